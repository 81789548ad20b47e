"""Final `BatchStatus`es as the aggregator publishes them, with the time each arrived."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import codec
from streams.aggregation import FINAL_STATUSES
from streams.kafka_admin import partitions_of


@dataclass(frozen=True)
class FinalStatus:
    at: float  # time.monotonic() when it was read
    status: str
    counters: dict[str, Any]


class StatusWatcher:
    """Reads `batchwire.status` from its end (partitions assigned, no group) and keeps the
    first final status of every batch."""

    def __init__(self, consumer: AIOKafkaConsumer, check: Callable[[], None] | None) -> None:
        self._consumer = consumer
        self.check = check
        self.finals: dict[str, FinalStatus] = {}
        self._changed = asyncio.Event()

    async def _follow(self) -> None:
        while True:
            fetched = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.monotonic()
            for records in fetched.values():
                for record in records:
                    if record.value is None:
                        continue
                    status = codec.decode_as("BatchStatus", record.value)
                    if status["status"] in FINAL_STATUSES:
                        self.finals.setdefault(
                            status["batch_id"],
                            FinalStatus(now, status["status"], dict(status["counters"])),
                        )
                        self._changed.set()

    async def wait(self, batch_ids: Iterable[str], limit_s: float) -> dict[str, FinalStatus]:
        """The final statuses of `batch_ids`; those that did not end in time are missing.
        `check` (when set) is called about once a second and may raise to stop waiting."""
        wanted = set(batch_ids)
        deadline = time.monotonic() + limit_s
        while not wanted <= self.finals.keys():
            if self.check is not None:
                self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
        return {b: self.finals[b] for b in wanted if b in self.finals}


@contextlib.asynccontextmanager
async def watch_statuses(
    bootstrap: str, topic: str, *, check: Callable[[], None] | None = None
) -> AsyncIterator[StatusWatcher]:
    """A running `StatusWatcher` of `topic` (which must exist: the worker creates it);
    `check` is the worker's liveness check (see `StatusWatcher.wait`)."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    await consumer.start()
    try:
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)
        watcher = StatusWatcher(consumer, check)
        follow = asyncio.create_task(watcher._follow())
        try:
            yield watcher
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
    finally:
        await consumer.stop()
