"""Batch controls every item processor must see: cancelled, timed out, failed groups.

Items of one batch are spread over every partition of `batchwire.items`, so a processor
cannot learn about a cancel from its own partitions.  The aggregator publishes a batch's
controls on the internal compacted topic `batchwire.controls` (keyed `tenant/batch_id`);
every worker reads all of its partitions into memory with its own group-less consumer.
(Faust's GlobalTable does the same but is documented to loop in recovery with several
workers.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)


class Controls:
    """The latest control record of each batch, kept current by `follow`."""

    def __init__(self) -> None:
        self._by_batch: dict[str, dict[str, Any]] = {}

    def update(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self._by_batch.pop(key, None)
        else:
            self._by_batch[key] = value

    def stop_reason(self, key: str) -> str | None:
        """`cancelled` or `timed_out` when the batch's pending items must not start."""
        control = self._by_batch.get(key)
        if control is None:
            return None
        if control.get("cancelled"):
            return "cancelled"
        if control.get("timed_out"):
            return "timed_out"
        return None

    def group_failed(self, key: str, group: str) -> bool:
        control = self._by_batch.get(key)
        return control is not None and group in control.get("failed_groups", ())

    async def follow(self, bootstrap: str, topic: str) -> None:
        """Read every partition of `topic` from the start, then keep up, until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions: set[int] | None = None
            while partitions is None:
                partitions = consumer.partitions_for_topic(topic)
                if partitions is None:
                    await consumer._client.force_metadata_update()  # topic may be new
                    await asyncio.sleep(0.5)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        self._apply(record.key, record.value)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        try:
            self.update(key.decode(), json.loads(value) if value is not None else None)
        except (UnicodeDecodeError, ValueError):
            log.warning("ignoring a malformed control record for %r", key)


def control_record(state: dict[str, Any], failed_groups: list[str]) -> dict[str, Any]:
    return {
        "cancelled": state["cancel_requested"],
        "timed_out": state["deadline_passed"],
        "failed_groups": failed_groups,
    }
