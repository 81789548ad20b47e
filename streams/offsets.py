"""Which consumed offsets may be committed, for the plain aiokafka consumer groups (the item
processors and the webhook connector): those below the lowest message still being handled.

Messages of one partition start in offset order and may finish in any order; the committable
offset of a partition is its lowest unfinished one (or one past the last started), so a crash
re-delivers every message not yet finished.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

log = logging.getLogger(__name__)


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def start(self, tp: TopicPartition, offset: int) -> None:
        self._pending.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None:
            pending.discard(offset)

    def committable(self) -> dict[TopicPartition, int]:
        out = {}
        for tp, upto in self._next.items():
            pending = self._pending.get(tp)
            offset = min(pending) if pending else upto
            if offset > self._committed.get(tp, -1):
                out[tp] = offset
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)

    @property
    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())


async def commit_finished(
    consumer: AIOKafkaConsumer, tracker: OffsetTracker, flush: Callable[[], Awaitable[None]]
) -> None:
    """Commit what is finished on the partitions still assigned, after `flush` has put on the
    broker what handling those messages produced.  A commit refused during a rebalance is
    skipped: the new owner of the partition re-delivers what was not committed."""
    assignment = consumer.assignment()
    offsets = {tp: o for tp, o in tracker.committable().items() if tp in assignment}
    if not offsets:
        return
    await flush()
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("commit skipped during a rebalance: %s", exc)
        return
    tracker.committed(offsets)


class OnRevoked(ConsumerRebalanceListener):
    """A rebalance listener that hands the revoked partitions to `callback` (which commits
    what is finished before another consumer takes them), and calls `joined` after each
    assignment (an empty one too: the consumer is in its group)."""

    def __init__(
        self,
        callback: Callable[[list[TopicPartition]], Awaitable[None]],
        joined: Callable[[], None] | None = None,
    ) -> None:
        self.callback = callback
        self.joined = joined

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.callback(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if self.joined is not None:
            self.joined()


async def topic_lag(consumer: Any) -> dict[str, int]:
    """Messages not yet consumed per topic, over the consumer's assigned partitions (an
    aiokafka consumer, or faust's, which answers the same three calls).

    A partition whose high watermark or position is not known yet counts for nothing: it
    has not been fetched since it was assigned, or it is paused (`streams.paused_fetch`
    pauses faust's changelog partitions, and aiokafka has no high watermark for them)."""
    lag: dict[str, int] = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        try:
            position = await consumer.position(tp)
        except IllegalStateError:  # no longer assigned
            continue
        if highwater is None or position is None:
            continue
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - position)
    return lag
