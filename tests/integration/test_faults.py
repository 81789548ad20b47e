"""Faults: nothing accepted is lost or counted twice (the bounded CI profile)."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from tests.fixtures.kafka_io import read_until, submit_json
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]

ACME = {"Authorization": "Bearer key-acme"}


async def test_kill_9_a_worker_mid_batch_three_times(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    n = 3000
    worker = worker_factory()
    items = [
        {
            "id": f"k{i}",
            "namespace": "batchwire",
            "action": "echo",
            "params": {"i": i},
            **({"group": f"g{i % 7}"} if i % 2 else {}),
        }
        for i in range(n)
    ]
    await submit_json(
        kafka_bootstrap, topic_prefix, {"batch_id": "kill-1", "tenant": "acme", "items": items}
    )
    chance = random.Random(9)
    for _ in range(3):  # bounded: three kills, each after a random moment of work
        await asyncio.sleep(chance.uniform(0.5, 3.0))
        worker.stop(kill=True)
        worker.start()

    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        for _ in range(900):
            answer = await client.get("/v1/batches/kill-1", headers=ACME)
            if answer.status_code == 200 and answer.json()["finished_at"]:
                break
            await asyncio.sleep(0.2)
        status = answer.json()
        assert status["status"] == "completed", status
        counters = status["counters"]
        assert counters["posted"] == counters["processed"] == counters["succeeded"] == n
        looked_up: list[int] = []
        cursor: str | None = "0"
        while cursor is not None:
            page = (
                await client.get(
                    "/v1/batches/kill-1/results",
                    params={"cursor": cursor, "limit": 1000},
                    headers=ACME,
                )
            ).json()
            looked_up.extend(r["index"] for r in page["results"])
            cursor = page["next_cursor"]
    assert looked_up == list(range(n))  # each item exactly once, in submission order
    results = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.results",
        lambda rs: len({r.decoded()["index"] for r in rs if r.key == b"kill-1"}) >= n,
        timeout=120,
    )
    on_topic = [r.decoded()["index"] for r in results if r.key == b"kill-1"]
    assert set(on_topic) == set(range(n))  # nothing lost; repeats are allowed on the topic
    print(f"{n} items, 3 kills: {len(on_topic) - n} items ran more than once")
