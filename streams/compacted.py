"""An in-memory view of a compacted topic of JSON values, kept current by following it.

Each process reads every partition with its own group-less consumer, from the start, so
every worker (or connector) sees every key.  A tombstone removes its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka_admin import partitions_of

log = logging.getLogger(__name__)


class CompactedView:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.caught_up = asyncio.Event()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        try:
            name = key.decode()
            if value is None:
                self.values.pop(name, None)
            else:
                self.values[name] = json.loads(value)
        except (UnicodeDecodeError, ValueError):
            log.warning("ignoring a malformed record for %r", key)

    async def follow(self, bootstrap: str, topic: str) -> None:
        """Read every partition of `topic` from the start, then keep up, until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = await partitions_of(bootstrap, topic)
            while not partitions:  # the topic may not have been created yet
                await asyncio.sleep(0.5)
                partitions = await partitions_of(bootstrap, topic)
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        self.apply(record.key, record.value)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                        self.caught_up.set()
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
