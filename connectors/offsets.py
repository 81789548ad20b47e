"""Which offsets may be committed: those below the lowest callback still being handled."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition


class OffsetTracker:
    """Callbacks of one partition start in offset order and may end in any order; the
    committable offset of a partition is its lowest unfinished one (or one past the last
    started), so a crash re-delivers every callback not yet finished and none twice more
    than needed."""

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
