"""Hand a message to the worker's Kafka producer, skipping Faust's per-message machinery.

Faust flushes this same producer before it commits consumer offsets, so a message published
while handling an event is on the broker before that event's offset is committed.  A send
that fails for good stops the worker (rather than committing past a lost message); on
restart the event is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import TopicT

from streams.app import app
from streams.murmur2 import default_partition

log = logging.getLogger(__name__)
_crashing: set[asyncio.Future[Any]] = set()
#: what `stop_worker` does after logging: crash the Faust app, or, in an item-processor
#: process (`streams.item_process_main`), which runs no Faust worker, end that process
_stop: Callable[[BaseException], Awaitable[None]] = app.crash


def on_fault(stop: Callable[[BaseException], Awaitable[None]]) -> None:
    """Make `stop_worker` call `stop` instead of crashing the Faust app."""
    global _stop
    _stop = stop


async def stop_worker(exc: BaseException, doing: str) -> None:
    """Stop the worker on a fault (not bad input): what it was doing is not acknowledged, so
    it is redelivered when the worker (or another) takes the partition again."""
    log.critical("%s failed: %r; stopping the worker", doing, exc, exc_info=exc)
    await _stop(exc)


def _check(fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        crash = asyncio.ensure_future(stop_worker(exc, "writing a message to Kafka"))
        _crashing.add(crash)
        crash.add_done_callback(_crashing.discard)


async def publish(
    topic: TopicT,
    key: bytes,
    value: bytes | None,
    partition: int | None = None,
    *,
    stop_on_fault: bool = True,
) -> asyncio.Future[Any]:
    """Hand a message to the producer; the returned future resolves once the broker has it.

    `value` None writes a tombstone (compacted topics forget the key). A send that fails
    stops the worker, unless `stop_on_fault` is False: the caller awaits the future and
    answers the failure itself (an HTTP submit, which has no event to redeliver)."""
    fut = asyncio.ensure_future(
        await app.producer.send(topic.get_topic_name(), key, value, partition, None, None)
    )
    if stop_on_fault:
        fut.add_done_callback(_check)
    return fut


class RecordBatches:
    """Messages for one topic, gathered per partition and handed to the producer as whole
    record batches by `send`.

    They land on the partition `publish` would pick (Kafka's default partitioner, in
    `streams.murmur2`), at a fraction of its cost per message: `publish` runs aiokafka's
    partitioner and makes a future for each, about a sixth of a worker's core at full load.
    What is gathered reaches the producer only in `send` (or when a batch fills), so send
    before the event is done: the producer's flush before a commit waits for what it has. A
    failed batch stops the worker, as in `publish`."""

    def __init__(self, topic: TopicT) -> None:
        self._producer: AIOKafkaProducer = app.producer._ensure_producer()  # type: ignore[attr-defined]
        self._topic = topic.get_topic_name()
        self._partitions = 0  # the topic's partition count, once known
        self._last: tuple[bytes, int] | None = None  # (key, partition): keys often repeat
        self._batches: dict[int, Any] = {}

    async def add(self, key: bytes, value: bytes) -> None:
        if not self._partitions:
            self._partitions = len(await self._producer.partitions_for(self._topic))
        partition = self._partition(key)
        batch = self._batches.get(partition)
        if batch is None:
            batch = self._batches[partition] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            await self._send(partition, batch)
            batch = self._batches[partition] = self._producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)

    async def send(self) -> list[asyncio.Future[Any]]:
        """Hand every gathered batch to the producer; the futures resolve once the broker
        has them."""
        batches, self._batches = self._batches, {}
        return [await self._send(partition, batch) for partition, batch in batches.items()]

    def _partition(self, key: bytes) -> int:
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        partition = default_partition(key, self._partitions)
        self._last = (key, partition)
        return partition

    async def _send(self, partition: int, batch: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = await self._producer.send_batch(
            batch, self._topic, partition=partition
        )
        fut.add_done_callback(_check)
        return fut


async def publish_batch(topic: TopicT, key: bytes, values: Sequence[bytes]) -> None:
    """Hand messages that share `key` to the producer as whole record batches."""
    batches = RecordBatches(topic)
    for value in values:
        await batches.add(key, value)
    await batches.send()
