"""Make aiokafka stop fetching the partitions that faust has paused (its tables' changelogs).

Faust's consumer is assigned every changelog partition of the worker's tables, reads them
while it recovers a table, and then "pauses" them: it leaves them out of the partitions it
asks aiokafka for, but never tells aiokafka.  aiokafka keeps fetching them, and since faust
never takes those records, each such partition holds its first fetch in aiokafka's buffer
for as long as the worker runs.  Worse, aiokafka sends a broker no fetch at all while any
partition it fetched from that broker holds untaken records younger than its prefetch
backoff (100 ms): the first write to each changelog partition stopped the worker's every
fetch (tenant submissions, result bundles) for 100 ms.  A traced worker did that 42 times
in its first 3 seconds after a start (bench/README.md, "Changelog partitions in the fetch").

`install` pauses those partitions in aiokafka too, and resumes them when faust asks for
them again (recovery after a rebalance, or a standby), each time faust polls.  It pauses
changelog partitions only: a source partition faust leaves out while it recovers stays as
aiokafka has it, so nothing here can keep a worker's input paused.  (An earlier version,
9c2c5b1, paused every partition faust left out and was reverted in f262a97: one CI run
then stalled after a broker restart that caused a rebalance, for a reason never found.)
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Set
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


def follow(
    consumer: AIOKafkaConsumer,
    wanted: Set[TopicPartition],
    pausable: Callable[[TopicPartition], bool],
) -> None:
    """Pause in `consumer` each assigned, `pausable` partition outside `wanted`, resume
    every paused one in it, and drop the records aiokafka holds for those paused.

    Nobody takes the dropped records, so their positions are where they were and a resumed
    partition fetches them again.  Dropped at every call, not only when pausing: a fetch in
    flight when a partition was paused still brings its records.  Must run on the
    consumer's event loop: aiokafka's pause creates a future there.
    """
    paused = consumer.paused()
    to_pause = [
        tp for tp in consumer.assignment() if tp not in wanted and tp not in paused and pausable(tp)
    ]
    to_resume = [tp for tp in paused if tp in wanted]
    if to_pause:
        consumer.pause(*to_pause)
    if to_resume:
        consumer.resume(*to_resume)
    held = getattr(consumer._fetcher, "_records", None)  # aiokafka's internals
    if held:
        paused = paused.union(to_pause).difference(to_resume)
        for tp in [tp for tp in held if tp in paused]:
            del held[tp]


@functools.cache  # once per process
def install() -> None:
    """Make faust's consumer thread keep aiokafka's paused partitions in step (idempotent)."""
    original: Callable[..., Awaitable[Any]] = AIOKafkaConsumerThread._fetch_records

    async def fetch_records(
        self: AIOKafkaConsumerThread,
        consumer: AIOKafkaConsumer,
        active_partitions: Set[TopicPartition],
        timeout: float | None = None,  # noqa: ASYNC109 - faust's signature
        max_records: int | None = None,
    ) -> Any:
        # faust's own method runs in its consumer thread, on the consumer's loop; an empty
        # set means "every partition" to aiokafka, and faust never asks for that.
        # Followed at every poll, not only when faust's set changes: a rebalance gives
        # aiokafka new, unpaused partition states even when the partitions are the same
        # (~40 us with 88 partitions; faust polls tens of times a second, since its agents
        # get result bundles, not items).
        if active_partitions and self.consumer.flow_active:
            follow(consumer, active_partitions, self.consumer._is_changelog_tp)
        return await original(
            self, consumer, active_partitions, timeout=timeout, max_records=max_records
        )

    AIOKafkaConsumerThread._fetch_records = fetch_records  # type: ignore[method-assign]

    verify: Callable[[AIOKafkaConsumerThread, float, Any], None]
    verify = AIOKafkaConsumerThread.verify_event_path

    def verify_event_path(self: AIOKafkaConsumerThread, now: float, tp: Any) -> None:
        # faust checks that aiokafka still fetches every assigned partition, and logs an
        # error per partition every few seconds once one has gone unfetched for its
        # `stream_processing_timeout`; a partition faust paused is meant to be unfetched
        if tp not in self.consumer._paused_partitions:
            verify(self, now, tp)

    AIOKafkaConsumerThread.verify_event_path = verify_event_path  # type: ignore[method-assign]
