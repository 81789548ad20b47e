"""Hand a message to the worker's Kafka producer, skipping Faust's per-message machinery.

Faust flushes this same producer before it commits consumer offsets, so a message published
while handling an event is on the broker before that event's offset is committed.  A send
that fails for good stops the worker (rather than committing past a lost message); on
restart the event is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import TopicT

from streams.app import app

log = logging.getLogger(__name__)
_crashing: set[asyncio.Future[Any]] = set()


async def stop_worker(exc: BaseException, doing: str) -> None:
    """Stop the worker on a fault (not bad input): what it was doing is not acknowledged, so
    it is redelivered when the worker (or another) takes the partition again."""
    log.critical("%s failed: %r; stopping the worker", doing, exc, exc_info=exc)
    await app.crash(exc)


def _check(fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        crash = asyncio.ensure_future(stop_worker(exc, "writing a message to Kafka"))
        _crashing.add(crash)
        crash.add_done_callback(_crashing.discard)


async def publish(
    topic: TopicT, key: bytes, value: bytes | None, partition: int | None = None
) -> asyncio.Future[Any]:
    """Hand a message to the producer; the returned future resolves once the broker has it.

    `value` None writes a tombstone (compacted topics forget the key)."""
    fut = asyncio.ensure_future(
        await app.producer.send(topic.get_topic_name(), key, value, partition, None, None)
    )
    fut.add_done_callback(_check)
    return fut


async def publish_batch(topic: TopicT, key: bytes, values: Sequence[bytes]) -> None:
    """Hand messages that share `key` to the producer as whole record batches.

    They land on the partition `publish` would pick (the same partitioner), at a fraction of
    its cost per message: `publish` runs the partitioner and makes a future for each (about
    a sixth of a worker's core at full load). A failed batch stops the worker, as in
    `publish`; the producer's flush before a commit waits for these batches too."""
    producer: AIOKafkaProducer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    name = topic.get_topic_name()
    partitions = list(await producer.partitions_for(name))
    partitioner = app.producer.partitioner  # faust's producer sets aiokafka's default
    assert partitioner is not None
    partition = partitioner(key, partitions, partitions)
    batch = producer.create_batch()
    for value in values:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            await _send_batch(producer, batch, name, partition)
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    if batch.record_count():
        await _send_batch(producer, batch, name, partition)


async def _send_batch(producer: AIOKafkaProducer, batch: Any, topic: str, partition: int) -> None:
    fut = await producer.send_batch(batch, topic, partition=partition)
    fut.add_done_callback(_check)
