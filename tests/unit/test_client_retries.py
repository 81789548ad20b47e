"""`BatchwireClient` tries a 503 `unavailable` again: a submit with the batch id it was given,
lookups and cancels as they were, a wait keeps polling. Against a server on 127.0.0.1 that
answers as the API does when Kafka or a batch's worker is down (the API's own 503s are
tested on a real broker and real workers in test_http_api)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from streams.client import ATTEMPTS, BatchwireApiError, BatchwireClient
from tests.fixtures.servers import serve

ITEMS = [{"namespace": "batchwire", "action": "noop", "params": {}}]


def unavailable(batch_id: str | None = None) -> web.Response:
    error = {"code": "unavailable", "message": "Kafka did not take it", "details": []}
    error["details"] = [{"batch_id": batch_id}] if batch_id is not None else []
    return web.json_response({"error": error}, status=503, headers={"Retry-After": "0"})


def status(state: str) -> web.Response:
    return web.json_response({"batch_id": "b-1", "status": state, "finished_at": None})


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
    assert [b["batch_id"] for b in bodies] == ["mine"] * ATTEMPTS


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


async def test_lookups_and_cancels_are_tried_again_and_the_tries_end() -> None:
    asked: list[str] = []

    async def api(request: web.Request) -> web.Response:
        asked.append(f"{request.method} {request.path}")
        if request.path == "/v1/batches/b-1":  # unavailable until the last try
            tries = asked.count("GET /v1/batches/b-1")
            return status("in_progress") if tries == ATTEMPTS else unavailable()
        if request.path == "/v1/batches/b-1/results":
            return web.json_response({"results": [{"index": 0}], "next_cursor": None})
        return unavailable()  # the cancel: every try

    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        assert (await client.status("b-1"))["status"] == "in_progress"
        assert [r async for r in client.results("b-1")] == [{"index": 0}]
        with pytest.raises(BatchwireApiError) as raised:
            await client.cancel("b-1")
    assert raised.value.code == "unavailable"
    assert asked == [
        *["GET /v1/batches/b-1"] * ATTEMPTS,
        "GET /v1/batches/b-1/results",
        *["POST /v1/batches/b-1/cancel"] * ATTEMPTS,
    ]


async def test_a_wait_polls_through_unavailable_answers() -> None:
    """More `unavailable` answers in a row than `ATTEMPTS`: a wait goes on polling until
    its own timeout (a killed worker's partitions move after the session timeout)."""
    calls = 0

    async def api(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return status("completed") if calls > 2 * ATTEMPTS else unavailable()

    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        final = await client.wait("b-1", timeout=30, poll_s=0)
    assert final["status"] == "completed"
    assert calls == 2 * ATTEMPTS + 1


async def test_an_ndjson_submit_of_items_given_afresh_is_tried_again_with_the_batch_id() -> None:
    tries: list[tuple[str | None, bytes]] = []

    async def api(request: web.Request) -> web.Response:
        tries.append((request.query.get("batch_id"), await request.read()))
        if len(tries) == 1:
            return unavailable("gen-1")
        return web.json_response({"batch_id": request.query["batch_id"]}, status=202)

    lines = [{"namespace": "batchwire", "action": "noop", "params": {"i": i}} for i in range(3)]
    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        answer = await client.submit_ndjson("acme", lambda: iter(lines))
    assert answer == {"batch_id": "gen-1"}
    assert [batch_id for batch_id, _ in tries] == [None, "gen-1"]
    sent = [[json.loads(line) for line in body.splitlines()] for _, body in tries]
    assert sent == [lines, lines]  # every item both times, read afresh


async def test_an_ndjson_submit_of_an_iterable_is_sent_once() -> None:
    calls = 0

    async def api(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await request.read()
        return unavailable("gen-1")

    async with serve(api) as url, BatchwireClient(url, "key-acme") as client:
        with pytest.raises(BatchwireApiError) as raised:
            await client.submit_ndjson("acme", iter(ITEMS))
    assert raised.value.code == "unavailable"
    assert calls == 1
