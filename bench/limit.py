"""The raw Kafka limit: aiokafka alone moving a batch through batchwire's hops.

    submission -> [batches] -> explode -> [items] -> process -> [results] -> count

One process (like one worker), the same broker, 8 partitions a topic, the real encoded
`ItemRequested` / `ItemResult` bytes with their real keys, and no processing at all: the
explode stage looks up the pre-encoded items of the part it read (by a header), the process
stage answers each item with a pre-encoded result of its batch (the batch id is in the
item's key).  Every aiokafka setting is the fastest found here: hand-built record batches
(`create_batch`/`send_batch`, no per-message future), linger 5 ms, 1 MB batches, large
fetches, `getmany(max_records=10000)`, no CRC checks, partitions assigned (no group join)
and no offset commits.  So this is an upper bound for any Python Kafka pipeline here; it
leaves out what batchwire writes besides these hops (the ledger, statuses, changelogs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bench.payloads import WireBatch, WireMessage
from bench.stats import rate
from streams.kafka_admin import PARTITIONS, ensure_topics, topic_config
from streams.parts import MAX_MESSAGE_BYTES

PART_HEADER = "bench-part"
MAX_RECORDS = 10_000
_partitioner = DefaultPartitioner()


@dataclass(frozen=True)
class LimitRun:
    items: int
    delivered: int  # results consumed at the end of the pipeline
    seconds: float

    @property
    def items_per_s(self) -> float:
        return rate(self.delivered, self.seconds)


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=MAX_MESSAGE_BYTES,
        acks=1,
    )


def _consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_wait_ms=100,
        check_crcs=False,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    return consumer


async def send_all(producer: AIOKafkaProducer, topic: str, messages: Sequence[WireMessage]) -> None:
    """Hand `messages` to the producer as hand-built record batches, partitioned by key
    the way Kafka's default partitioner does (murmur2), without waiting for acks.  aiokafka
    keeps one batch in flight per partition, so callers send as much as they can at once."""
    partitions = list(range(PARTITIONS))
    by_partition: dict[int, list[WireMessage]] = defaultdict(list)
    for message in messages:
        by_partition[_partitioner(message.key, partitions, partitions)].append(message)
    for partition, batch_messages in by_partition.items():
        batch = producer.create_batch()
        for message in batch_messages:
            appended = batch.append(
                timestamp=None, key=message.key, value=message.value, headers=list(message.headers)
            )
            if appended is None:  # full: send it and start another
                await producer.send_batch(batch, topic, partition=partition)
                batch = producer.create_batch()
                batch.append(
                    timestamp=None,
                    key=message.key,
                    value=message.value,
                    headers=list(message.headers),
                )
        await producer.send_batch(batch, topic, partition=partition)


async def _started_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A consumer of every partition of `topic` whose positions are known (so the topic's
    leaders are too): nothing is left to set up once the clock starts."""
    consumer = _consumer(bootstrap, topic)
    await consumer.start()
    fetcher_log = logging.getLogger("aiokafka.consumer.fetcher")
    level = fetcher_log.level
    fetcher_log.setLevel(logging.CRITICAL)  # "not leader" while a new topic elects leaders
    try:
        for tp in consumer.assignment():
            await asyncio.wait_for(consumer.position(tp), timeout=30)
    finally:
        fetcher_log.setLevel(level)
    return consumer


async def _explode(
    bootstrap: str,
    consumer: AIOKafkaConsumer,
    topics: dict[str, str],
    batches: Sequence[WireBatch],
    deadline: float,
) -> None:
    expected = sum(len(b.parts) for b in batches)
    producer = _producer(bootstrap)
    await producer.start()
    try:
        seen = 0
        while seen < expected and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
            exploded: list[WireMessage] = []  # one send for the whole fetch: fuller batches
            for records in fetched.values():
                for record in records:
                    b, p = dict(record.headers)[PART_HEADER].decode().split(":")
                    exploded.extend(batches[int(b)].items[int(p)])
                    seen += 1
            if exploded:
                await send_all(producer, topics["items"], exploded)
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()


async def _process(
    bootstrap: str,
    consumer: AIOKafkaConsumer,
    topics: dict[str, str],
    batches: Sequence[WireBatch],
    deadline: float,
) -> None:
    results = {b.batch_id: b.results for b in batches}
    expected = sum(len(b.results) for b in batches)
    producer = _producer(bootstrap)
    await producer.start()
    try:
        seen = 0
        while seen < expected and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
            answers: list[WireMessage] = []
            for records in fetched.values():
                for record in records:
                    assert record.key is not None
                    batch_id = record.key.split(b"/", 2)[1].decode()
                    of_batch = results[batch_id]
                    answers.append(of_batch[seen % len(of_batch)])
                    seen += 1
            if answers:
                await send_all(producer, topics["results"], answers)
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()


async def _count(consumer: AIOKafkaConsumer, expected: int, deadline: float) -> int:
    try:
        seen = 0
        while seen < expected and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
            seen += sum(len(records) for records in fetched.values())
        return seen
    finally:
        await consumer.stop()


async def run_limit(
    bootstrap: str, prefix: str, batches: Sequence[WireBatch], *, time_limit_s: float
) -> LimitRun:
    """Push `batches` through the three hops; time from the first submission sent to the
    last result counted.  Stops by itself after `time_limit_s`."""
    topics = {name: f"{prefix}limit.{name}" for name in ("batches", "items", "results")}
    await ensure_topics(bootstrap, {t: topic_config() for t in topics.values()}, PARTITIONS)
    expected = sum(len(b.results) for b in batches)
    consumers = [
        await _started_consumer(bootstrap, topics[name]) for name in ("batches", "items", "results")
    ]
    deadline = time.monotonic() + time_limit_s
    stages = [
        asyncio.create_task(_explode(bootstrap, consumers[0], topics, batches, deadline)),
        asyncio.create_task(_process(bootstrap, consumers[1], topics, batches, deadline)),
    ]
    counting = asyncio.create_task(_count(consumers[2], expected, deadline))
    tasks = {counting, *stages}
    submissions = [
        WireMessage(part.key, part.value, ((PART_HEADER, f"{b}:{p}".encode()),))
        for b, batch in enumerate(batches)
        for p, part in enumerate(batch.parts)
    ]
    producer = _producer(bootstrap)
    await producer.start()
    try:
        started = time.monotonic()
        await send_all(producer, topics["batches"], submissions)
        await producer.flush()
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        seconds = time.monotonic() - started
    finally:
        await producer.stop()
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)  # consumers stopped
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome  # a stage's error
    return LimitRun(items=expected, delivered=counting.result(), seconds=seconds)
