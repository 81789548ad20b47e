"""Make the partitions faust leaves out of its polls paused in aiokafka too.

Faust's consumer "pauses" a partition only in its own books: it stops asking aiokafka for
that partition's records, but aiokafka keeps it assigned and fetching. Every table's
changelog partitions are such partitions once recovery is over (faust reads them only
while it recovers a table), and this worker's own table writes land in them. So aiokafka
fetched each changelog partition once more, kept the records (up to a fetch, 256 KiB, or
a whole ~1 MB part of `batch-parts`) in its buffer for good, since nobody asked for them,
and, while they were fresh, sent no fetch for any other partition: aiokafka waits for a
partition's buffered records to be taken, up to its 100 ms prefetch backoff, before it
fetches again from the same broker. A fresh worker's 10-item batches waited up to 100 ms
at a hop whenever a changelog partition was written to for the first time.

`install()` wraps faust's fetch in its consumer thread (where aiokafka's consumer lives)
so that before each poll aiokafka's paused partitions are exactly those faust leaves out,
and records already buffered for a newly paused partition are dropped (its position is
unchanged: they are fetched again when it is resumed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Set
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_installed = False


def mirror_active(consumer: AIOKafkaConsumer, active: Set[Any]) -> None:
    """Pause every assigned partition not in `active` and resume those in it."""
    assigned = consumer.assignment()
    should_pause = {tp for tp in assigned if tp not in active}
    paused = consumer.paused()
    if paused == should_pause:
        return
    newly_paused = should_pause - paused
    consumer.pause(*newly_paused)
    consumer.resume(*(paused - should_pause))
    # aiokafka's buffer of fetched records, by partition (an internal: if it moves, the
    # records stay until the partition is resumed, as before this module)
    buffered = getattr(consumer._fetcher, "_records", None)
    if isinstance(buffered, dict):
        for tp in newly_paused:
            buffered.pop(tp, None)


def install() -> None:
    """Wrap faust's fetch so that aiokafka pauses what faust pauses (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original: Callable[..., Awaitable[Any]] = AIOKafkaConsumerThread._fetch_records

    async def _fetch_records(
        self: AIOKafkaConsumerThread,
        consumer: AIOKafkaConsumer,
        active_partitions: Set[Any] | None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if active_partitions is not None:
            mirror_active(consumer, active_partitions)
        return await original(self, consumer, active_partitions, *args, **kwargs)

    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
