"""`offsets.topic_lag`: per-topic lag over a consumer's partitions, for `/metrics`, when some
partitions' ends are not known (the worker answered 500 on `/metrics` while a paused
changelog partition had no high watermark)."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from streams.offsets import topic_lag


class Consumer:
    """The three calls `topic_lag` makes, answered from tables (no broker: the calls are
    aiokafka's and faust's consumer API, and what is tested is the arithmetic around them)."""

    def __init__(
        self,
        highwaters: dict[TopicPartition, int | None],
        positions: dict[TopicPartition, int | None],
    ) -> None:
        self.highwaters, self.positions = highwaters, positions

    def assignment(self) -> set[TopicPartition]:
        return set(self.highwaters)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: TopicPartition) -> int | None:
        if tp not in self.positions:
            raise IllegalStateError("partition is not assigned")
        return self.positions[tp]


async def test_unknown_ends_count_for_nothing_and_topics_add_up() -> None:
    a0, a1, b0, c0, c1 = (
        TopicPartition("a", 0),
        TopicPartition("a", 1),
        TopicPartition("b", 0),
        TopicPartition("c", 0),
        TopicPartition("c", 1),
    )
    consumer = Consumer(
        highwaters={a0: 10, a1: 7, b0: None, c0: 5, c1: 3},
        positions={a0: 4, a1: 9, b0: 2, c0: None},  # c1: revoked meanwhile
    )
    assert await topic_lag(consumer) == {"a": 6}  # a1 is ahead (0), b0 and c unknown
