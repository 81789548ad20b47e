"""The two HTTP servers the bench runs itself, on 127.0.0.1: a tenant API that answers
every request at once, and a webhook receiver that notes when each batch's callback came."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from aiohttp import web

from streams.demo import serve


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def fast_target() -> AsyncIterator[str]:
    """A tenant API answering 200 `{"ok": true}` to any method and path; yields its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _answer)
    async with serve(app) as url:
        yield url


class CallbackReceiver:
    """Records the arrival time (monotonic) of each batch callback, by batch id."""

    def __init__(self) -> None:
        self.url = ""
        self.arrived: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Future[float]] = {}

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        payload = json.loads(await request.read())
        batch_id = str(payload.get("batch_id"))
        self.arrived.setdefault(batch_id, at)
        waiter = self._waiting.get(batch_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(self.arrived[batch_id])
        return web.Response(status=204)

    async def wait(self, batch_id: str, limit_s: float) -> float:
        """When the batch's callback arrived; `TimeoutError` after `limit_s` seconds."""
        if batch_id in self.arrived:
            return self.arrived[batch_id]
        waiter = self._waiting.setdefault(batch_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), limit_s)
        finally:
            self._waiting.pop(batch_id, None)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[CallbackReceiver]:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        async with serve(app) as url:
            self.url = f"{url}/hooks"
            yield self
