"""`streams.paused_fetch`: a partition left out of faust's polls is paused in aiokafka, and
records dropped from its buffer on pausing come again, once, when it is resumed."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.paused_fetch import mirror_active
from tests.fixtures.kafka_io import create_topic, produce


async def _take(
    consumer: AIOKafkaConsumer, want: int, *partitions: TopicPartition
) -> dict[TopicPartition, list[bytes]]:
    got: dict[TopicPartition, list[bytes]] = {}
    for _ in range(50):
        polled = await consumer.getmany(*partitions, timeout_ms=200)
        for tp, records in polled.items():
            got.setdefault(tp, []).extend(r.value for r in records if r.value is not None)
        if sum(len(v) for v in got.values()) >= want:
            break
    return got


async def test_left_out_partitions_are_paused_and_their_records_come_when_resumed(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}pausedfetch"
    await create_topic(kafka_bootstrap, topic, 2)
    polled, left_out = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await produce(kafka_bootstrap, topic, [(b"a", b"a0")], partition=0)
    await produce(kafka_bootstrap, topic, [(b"b", b"b0")], partition=1)

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([polled, left_out])
    try:
        # as faust polls: only the partitions it wants; the other one's record is fetched
        # and buffered all the same
        assert await _take(consumer, 1, polled) == {polled: [b"a0"]}
        await asyncio.sleep(0.5)

        mirror_active(consumer, {polled})
        assert consumer.paused() == {left_out}
        await produce(kafka_bootstrap, topic, [(b"a", b"a1")], partition=0)
        await produce(kafka_bootstrap, topic, [(b"b", b"b1")], partition=1)
        # polling every partition now brings only the active one's records
        assert await _take(consumer, 1) == {polled: [b"a1"]}
        assert (await consumer.getmany(timeout_ms=500)) == {}

        mirror_active(consumer, {polled, left_out})
        assert consumer.paused() == set()
        # the dropped buffer is fetched again: every record of the resumed partition, once
        assert await _take(consumer, 2) == {left_out: [b"b0", b"b1"]}
    finally:
        await consumer.stop()
