"""`streams.client` against real workers and the real broker."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from connectors.signing import WebhookSecret, webhook_headers
from streams.client import (
    BatchTimeout,
    BatchwireApiError,
    BatchwireClient,
    KafkaBatches,
    verify_webhook,
)
from streams.parts import split_parts
from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYNC_REQUESTS: list[dict[str, Any]] = [
    {"id": "1", "method": "POST", "path": "/echo/a", "body": {"n": 1}, "transaction": "t"},
    {"id": "2", "method": "GET", "path": "/status/409", "transaction": "t"},
    {"id": "3", "method": "GET", "path": "/echo/after", "transaction": "t"},
]


def echo(i: int, **params: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "namespace": "batchwire", "action": "echo", "params": {"i": i, **params}}


async def _until_known(client: BatchwireClient, batch_id: str) -> dict[str, Any]:
    """The status once the aggregator has registered the batch."""
    for _ in range(100):
        try:
            return await client.status(batch_id)
        except BatchwireApiError as exc:
            assert exc.code == "not_found"
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch {batch_id} never became known")


async def test_submit_wait_and_results_in_order_then_ndjson(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    async with BatchwireClient(worker.url, "key-acme") as client:
        items = [*(echo(i) for i in range(7)), {**echo(7), "namespace": "no", "action": "such"}]
        accepted = await client.submit("acme", {"items": items, "metadata": {"asyncId": "a-1"}})
        assert accepted["status"] == "accepted"
        batch_id = accepted["batch_id"]
        done = await client.wait(batch_id, timeout=60, poll_s=0.2)
        assert done["status"] == "completed_with_errors"
        assert done["counters"]["succeeded"] == 7 and done["counters"]["failed"] == 1
        assert done["metadata"] == {"asyncId": "a-1"}

        got = [r async for r in client.results(batch_id, page_size=3)]
        assert [r["item_id"] for r in got] == [f"e{i}" for i in range(8)]
        assert [r["output"] for r in got[:7]] == [{"i": i} for i in range(7)]
        failed = [r async for r in client.results(batch_id, status="failed", page_size=3)]
        assert [(r["item_id"], r["status"]) for r in failed] == [("e7", "failed")]

        pulled: list[int] = []

        def lines() -> Iterator[dict[str, Any]]:
            for i in range(2500):
                pulled.append(i)
                yield echo(i)

        streamed = await client.submit_ndjson(
            "acme", lines(), batch_id="nd-1", metadata={"kind": "ndjson"}, stop_on_failure=False
        )
        assert streamed["batch_id"] == "nd-1" and len(pulled) == 2500
        final = await client.wait("nd-1", timeout=60, poll_s=0.2)
        assert final["status"] == "completed"
        assert final["counters"]["posted"] == 2500 and final["counters"]["succeeded"] == 2500
        assert final["metadata"] == {"kind": "ndjson"}
        indexes = [r["index"] async for r in client.results("nd-1", page_size=1000)]
        assert indexes == list(range(2500))


async def test_error_answers_timeouts_cancel_and_run_sync(
    worker_factory: WorkerFactory, target_api: TargetApi
) -> None:
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    async with BatchwireClient(worker.url, "key-acme") as client:
        with pytest.raises(BatchwireApiError) as empty:
            await client.submit("acme", {"items": []})
        assert (empty.value.status, empty.value.code) == (422, "empty_batch")
        assert empty.value.message
        with pytest.raises(BatchwireApiError) as shape:
            await client.submit("acme", {"items": [{"id": "x"}]})
        assert shape.value.code == "invalid_batch_format"
        assert shape.value.details[0]["path"] == "$.items[0]"
        with pytest.raises(BatchwireApiError) as bad_line:
            await client.submit_ndjson("acme", [echo(0), {"id": "x"}])
        assert bad_line.value.code == "invalid_batch_format"
        with pytest.raises(BatchwireApiError) as unknown:
            await client.status("no-such-batch")
        assert (unknown.value.status, unknown.value.code) == (404, "not_found")

        slow = [
            {"id": f"s{i}", "method": "GET", "path": f"/slow/300?i={i}", "group": "g"}
            for i in range(20)
        ]
        accepted = await client.submit("acme", {"batch_id": "slow-1", "items": slow})
        with pytest.raises(BatchTimeout) as late:
            await client.wait(accepted["batch_id"], timeout=0.3, poll_s=0.1)
        assert late.value.batch_id == "slow-1"
        await _until_known(client, "slow-1")
        cancelling = await client.cancel("slow-1")
        assert cancelling["batch_id"] == "slow-1"
        cancelled = await client.wait("slow-1", timeout=30, poll_s=0.2)
        assert cancelled["status"] == "cancelled"
        assert cancelled["counters"]["processed"] == 20 and cancelled["counters"]["cancelled"] >= 10

        answers = await client.run_sync(SYNC_REQUESTS, headers={"X-Trace": "from-client"})
        assert [(a["id"], a["code"]) for a in answers] == [("1", 200), ("2", 409), ("3", 424)]
        assert answers[0]["body"] == {"method": "POST", "path": "/echo/a", "body": {"n": 1}}
        assert answers[1]["body"] == {"reason": "status 409"}
        seen = {s.path: s.headers for s in target_api.seen}
        assert seen["/echo/a"]["x-trace"] == "from-client"
        assert "/echo/after" not in seen
        with pytest.raises(BatchwireApiError) as too_many:
            await client.run_sync(
                [{"id": str(i), "method": "GET", "path": "/e"} for i in range(101)]
            )
        assert (too_many.value.status, too_many.value.code) == (413, "too_many_items")

    async with BatchwireClient(worker.url, "wrong-key") as stranger:
        with pytest.raises(BatchwireApiError) as refused:
            await stranger.status("slow-1")
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")


async def test_kafka_batches_submit_parts_and_consume_results(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker = worker_factory()
    pad = "x" * 2000
    batch = {"tenant": "acme", "items": [echo(i, pad=pad) for i in range(1100)]}
    assert len(json.dumps(batch).encode()) > 2_000_000
    assert len(split_parts({**batch, "batch_id": "b"})) >= 3
    group = f"{topic_prefix}consumer"
    async with KafkaBatches(kafka_bootstrap, topic_prefix=topic_prefix) as kafka:
        batch_id = await kafka.submit(batch)
        assert len(batch_id) == 32
        async with BatchwireClient(worker.url, "key-acme") as client:
            final = await client.wait(batch_id, timeout=60, poll_s=0.3)
        assert final["status"] == "completed" and final["parts"] >= 3
        assert final["counters"]["posted"] == 1100 and final["counters"]["succeeded"] == 1100

        got = [r async for r in kafka.results(group_id=group, batch_id=batch_id, idle_timeout_s=2)]
        assert sorted(r["index"] for r in got) == list(range(1100))
        assert {r["batch_id"] for r in got} == {batch_id}
        assert got[0]["output"] == {"i": got[0]["index"], "pad": pad}

        again, statuses = await asyncio.gather(
            _collect(kafka.results(group_id=group, batch_id=batch_id, idle_timeout_s=1.5)),
            _collect(kafka.statuses(group_id=f"{group}-s", batch_id=batch_id, idle_timeout_s=1.5)),
        )
        assert again == []  # the group's offsets were committed
        assert statuses[-1]["status"] == "completed"
        assert statuses[-1]["counters"]["processed"] == 1100


async def _collect(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x async for x in stream]


async def test_verify_webhook_checks_the_signature() -> None:
    text = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
    body = json.dumps({"batch_id": "b1", "status": "completed"}).encode()
    headers = webhook_headers([WebhookSecret.parse(text)], "msg_1", body)
    assert verify_webhook(text, headers, body)
    assert verify_webhook(text, {k.upper(): v for k, v in headers.items()}, body)
    assert not verify_webhook(text, headers, body.replace(b"completed", b"cancelled"))
    other = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
    assert not verify_webhook(other, headers, body)
    stale = webhook_headers([WebhookSecret.parse(text)], "msg_1", body, now=1_000_000)
    assert not verify_webhook(text, stale, body)
    assert verify_webhook(text, stale, body, tolerance_s=10**10)
