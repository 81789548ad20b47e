"""`streams.fair_fetch`: a record of a quiet partition is not held behind a busy one's buffer."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import fair_fetch
from tests.fixtures.kafka_io import create_topic, produce

BUSY = 1000
POLL = 100


async def test_a_quiet_partition_gets_its_turn_while_a_busy_one_still_has_records(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}fairfetch"
    await create_topic(kafka_bootstrap, topic, 2)
    busy, quiet = TopicPartition(topic, 0), TopicPartition(topic, 1)
    # all of it is on the broker before the consumer starts: one fetch brings both
    # partitions, the busy one's ~1,000 records first
    await produce(
        kafka_bootstrap, topic, [(b"a", f"a{i}".encode()) for i in range(BUSY)], partition=0
    )
    await produce(kafka_bootstrap, topic, [(b"b", b"b0")], partition=1)

    fair_fetch.install()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([busy, quiet])
    polls: list[dict[TopicPartition, list[bytes]]] = []
    try:
        while sum(len(p.get(busy, [])) for p in polls) < BUSY and len(polls) < 100:
            got = await consumer.getmany(timeout_ms=10_000, max_records=POLL)
            assert got, "nothing arrived within 10 s"
            polls.append({tp: [r.value for r in records] for tp, records in got.items()})
    finally:
        await consumer.stop()

    busy_before_quiet = 0
    for poll in polls:
        if quiet in poll:
            break
        busy_before_quiet += len(poll.get(busy, []))
    # without the round-robin, aiokafka hands out the busy partition's whole buffer first
    assert busy_before_quiet <= POLL, f"{busy_before_quiet} busy records came before the quiet one"
    assert [v for p in polls for v in p.get(quiet, [])] == [b"b0"]
    assert [v for p in polls for v in p.get(busy, [])] == [f"a{i}".encode() for i in range(BUSY)]
