"""Answers that read a whole table, reused for a while so that reading stays a small share
of the worker's event loop.

The dashboard counts a key's batches by reading every batch state of the worker (~5 µs to
decode each, more to read it): with a week of batches kept (100,000s), one read takes
seconds, and the dashboard asks every second. An answer is reused for `REUSE` times as
long as it took to make (at least `MIN_AGE_S`), so reading takes at most ~1/`REUSE` of the
loop whatever the table holds, and a small table is read again every second. Requests
that come while a read runs wait for that read rather than start another.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

REUSE = 20
MIN_AGE_S = 1.0
#: answers kept (one per set of tenants asking; the oldest goes first)
MAX_KEPT = 16


class ReusedScans:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def answer(self, key: Hashable, scan: Callable[[], Awaitable[Any]]) -> Any:
        """`scan()`'s answer for `key`, made again only once the last one has aged."""
        kept = self._kept.get(key)
        if kept is not None and self._clock() < kept[0]:
            return kept[1]
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(self._scan(key, scan))
            self._running[key] = running
        # shielded: a client that leaves does not cancel the read the others wait for
        return await asyncio.shield(running)

    async def _scan(self, key: Hashable, scan: Callable[[], Awaitable[Any]]) -> Any:
        started = self._clock()
        try:
            value = await scan()
        finally:
            del self._running[key]
        took = self._clock() - started
        self._kept[key] = (started + max(MIN_AGE_S, REUSE * took), value)
        self._kept.move_to_end(key)
        while len(self._kept) > MAX_KEPT:
            self._kept.popitem(last=False)
        return value
