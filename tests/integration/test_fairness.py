"""Fairness (issue 7, scenario 7): tenant B's small batches while tenant A's big one runs.

Tenant B submits 10-item batches one at a time, first with the worker idle, then while
tenant A's big batch runs. Latencies are printed (`FAIRNESS-FIGURES`), never asserted: the
machine is shared. What is asserted is behaviour: B's batches end while A's is still
running (without fairness each waits behind A's whole backlog of items), and A ends exact.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import pytest
from aiokafka import AIOKafkaProducer

from bench.status_watch import StatusWatcher, watch_statuses
from tests.fixtures.accounting import HANDLER_MODULES, account, fault_batch, submit_in_parts
from tests.fixtures.soak import SOAK, items, pick, profile
from tests.fixtures.workers import WorkerFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.reliability,
    pytest.mark.timeout(pick(300, 1500)),
]

BIG = items(20_000, 100_000)
IDLE_BATCHES = pick(20, 50)
#: at most this many small batches while the big one runs (fewer when it ends first)
BUSY_BATCHES = pick(200, 2000)
SMALL_TIMEOUT_S = 120.0


class SmallBatches:
    """Tenant B's 10-item batches, submitted one at a time, timed submit -> final status."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, watcher: StatusWatcher) -> None:
        self.producer, self.topic, self.watcher = producer, topic, watcher

    async def run(self, batch_id: str) -> float:
        batch = {
            "batch_id": batch_id,
            "tenant": "globex",
            "items": [
                {"id": f"b{i}", "namespace": "batchwire", "action": "noop", "params": {}}
                for i in range(10)
            ],
        }
        started = time.monotonic()
        await self.producer.send_and_wait(self.topic, json.dumps(batch).encode(), key=b"globex")
        final = (await self.watcher.wait([batch_id], SMALL_TIMEOUT_S)).get(batch_id)
        assert final is not None, f"{batch_id} did not end within {SMALL_TIMEOUT_S:.0f}s"
        assert final.status == "completed" and final.counters["succeeded"] == 10, final
        return final.at - started


def summary(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"n={len(ms)} p50={statistics.median(ms):.0f}ms p99={p99:.0f}ms max={ms[-1]:.0f}ms"


#: the soak runs it with an item process too (`--processes 1 --release-window 1000`, the flags
#: the bench measures beside the default worker); CI with the default worker only
FLAGS = [(), ("--processes", "1", "--release-window", "1000")] if SOAK else [()]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda flags: " ".join(flags) or "default")
async def test_small_batches_are_not_stuck_behind_a_big_one(
    worker_factory: WorkerFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    flags: tuple[str, ...],
) -> None:
    worker = await asyncio.to_thread(worker_factory, HANDLER_MODULES, args=flags)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)
    await producer.start()
    try:
        async with watch_statuses(kafka_bootstrap, f"{topic_prefix}batchwire.status") as watcher:
            small = SmallBatches(producer, f"{topic_prefix}batchwire.batches", watcher)
            await small.run("warm-up")
            idle = [await small.run(f"idle-{i}") for i in range(IDLE_BATCHES)]

            big, submitted = fault_batch("big", BIG)
            started = time.monotonic()
            await submit_in_parts(kafka_bootstrap, topic_prefix, big)
            busy: list[float] = []
            for i in range(BUSY_BATCHES):  # bounded, and over once the big batch ends
                if submitted.batch_id in watcher.finals:
                    break
                busy.append(await small.run(f"busy-{i}"))
            big_seconds = time.monotonic() - started
            figures = await account(
                bootstrap=kafka_bootstrap,
                prefix=topic_prefix,
                submitted=submitted,
                urls=[worker.url],
                fault=f"none: fairness ({profile()})",
                injected=0,
                started=started,
                timeout=300,
            )
            ended_meanwhile = sum(
                1
                for i in range(len(busy))
                if watcher.finals[f"busy-{i}"].at < watcher.finals[submitted.batch_id].at
            )
    finally:
        await producer.stop()
    print(
        f"FAIRNESS-FIGURES {topic_prefix} ({profile()}; worker flags: {' '.join(flags) or '-'}) "
        f"tenant A: {BIG} items in {big_seconds:.1f}s "
        f"({figures.items / max(big_seconds, 1e-9):.0f} items/s); tenant B 10-item batches, "
        f"idle: {summary(idle)}; while A runs: {summary(busy) if busy else 'none'}; "
        f"{ended_meanwhile} of B's ended before A"
    )
    assert ended_meanwhile >= min(3, len(busy)) and busy, (
        "tenant B's batches waited for tenant A's big batch"
    )
