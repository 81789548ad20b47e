"""`BatchwireClient.submit` tries a 503 `unavailable` again with the batch id it was given,
against a server on 127.0.0.1 that answers as the API does when Kafka is down (the API's
own 503 is tested on a real broker in test_http_api)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from streams.client import SUBMIT_ATTEMPTS, BatchwireApiError, BatchwireClient
from tests.fixtures.servers import serve

ITEMS = [{"namespace": "batchwire", "action": "noop", "params": {}}]


def unavailable(batch_id: str) -> web.Response:
    error = {"code": "unavailable", "message": "Kafka did not take it", "details": []}
    error["details"] = [{"batch_id": batch_id}]
    return web.json_response({"error": error}, status=503, headers={"Retry-After": "0"})


async def test_a_503_is_tried_again_with_the_batch_id_it_gave() -> None:
    bodies: list[dict[str, Any]] = []

    async def api(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        if len(bodies) == 1:
            return unavailable("gen-1")
        return web.json_response({"batch_id": bodies[-1]["batch_id"]}, status=202)

    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        answer = await client.submit("acme", {"items": ITEMS})
    assert answer == {"batch_id": "gen-1"}
    assert [b.get("batch_id") for b in bodies] == [None, "gen-1"]


async def test_the_client_s_own_batch_id_is_kept_and_the_tries_end() -> None:
    bodies: list[dict[str, Any]] = []

    async def api(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return unavailable("other")

    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        with pytest.raises(BatchwireApiError) as raised:
            await client.submit("acme", {"batch_id": "mine", "items": ITEMS})
    assert raised.value.code == "unavailable"
    assert [b["batch_id"] for b in bodies] == ["mine"] * SUBMIT_ATTEMPTS


async def test_other_errors_are_not_tried_again() -> None:
    calls = 0

    async def api(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        error = {"code": "too_many_active_batches", "message": "busy", "details": []}
        return web.json_response({"error": error}, status=429, headers={"Retry-After": "0"})

    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        with pytest.raises(BatchwireApiError):
            await client.submit("acme", {"items": ITEMS})
    assert calls == 1
