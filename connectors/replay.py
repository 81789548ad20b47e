"""Re-publish dead-lettered callbacks to `batchwire.callbacks`, keeping their `webhook-id`.

Reads `batchwire.callbacks.dlq` with its own consumer group (each entry is replayed once)
up to the end it had when the command started, so it always stops.  A replayed callback's
endpoint is enabled again (an operator replaying it means the endpoint is back).

A replay of one batch (`--batch-id`) reads with a group of that batch alone: it passes over
the other batches' letters, and must not mark them replayed for a later plain replay (which
then replays that batch's letters again, with the same `webhook-id`).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams import codec
from streams.kafka_admin import partitions_of
from streams.settings import Settings


async def replay_dead_letters(settings: Settings, *, batch_id: str | None = None) -> int:
    """Replay every dead letter not replayed before (of one batch when given); the count."""
    bootstrap = settings.kafka_bootstrap
    topic = settings.topic("batchwire.callbacks.dlq")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=replay_group(settings.topic_prefix, batch_id),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    replayed = 0
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        if not tps:
            return 0
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                        continue
                    letter = codec.decode_as("DeadLetter", record.value)
                    callback = letter["callback"]
                    if batch_id is not None and callback["batch_id"] != batch_id:
                        continue
                    await producer.send_and_wait(
                        settings.topic("batchwire.endpoints"), None, key=callback["url"].encode()
                    )
                    await producer.send_and_wait(
                        settings.topic("batchwire.callbacks"),
                        codec.encode("CallbackRequested", callback),
                        key=callback["batch_id"].encode(),
                    )
                    replayed += 1
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
    return replayed


def replay_group(prefix: str, batch_id: str | None) -> str:
    group = f"{prefix}batchwire-webhook-replay"
    return group if batch_id is None else f"{group}.batch.{batch_id}"


def replay(settings: Settings, batch_id: str | None = None) -> int:
    return asyncio.run(replay_dead_letters(settings, batch_id=batch_id))
