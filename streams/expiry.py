"""Entries of a table that expire, found without reading the whole table.

The aggregator forgets ended batches after their retention, and the exploder forgets its
idempotency records some time after that. Both must delete an entry while handling an
event of the entry's own partition (faust writes the tombstone to that changelog
partition). Reading the whole table to find what expired costs ~2.5 µs per entry: with
100,000 ended batches kept, a quarter of a second of the worker's event loop, which the
aggregator spent once a minute for each of its partitions.

An `Expiries` reads its table once after each rebalance into one heap per partition,
hears of each entry written through it (`put`), and answers `expired` by popping the tops
of one heap: nothing to read when nothing expired. It holds one (time, key) pair per
entry (~180 bytes with a 41-character key).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from faust.streams import current_event

from streams.app import app
from streams.tables import BatchwireTable

#: when an entry expires (seconds since the epoch), or None when it never does
ExpiresAt = Callable[[dict[str, Any]], float | None]


class Expiries:
    def __init__(self, table: BatchwireTable, expires_at: ExpiresAt) -> None:
        self.table = table
        self.expires_at = expires_at
        self._heaps: dict[int, list[tuple[float, str]]] = {}
        #: faust's rebalance count when the heaps were read from the table (None: never)
        self._read_at: int | None = None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Write `entry` under `key`, with the partition of the event being handled (the
        changelog partition faust writes it to)."""
        event = current_event()
        if event is None:
            raise RuntimeError(f"{self.table.name}: entries are written while handling an event")
        entry = {**entry, "partition": event.message.partition}
        self.table[key] = entry
        if self._read_at == app.rebalancing_count:  # else the next read finds it
            self._push(key, entry)

    def expired(self, partition: int, now: float) -> list[str]:
        """The keys of `partition` whose entries expired by `now`. The caller deletes them
        (or they are forgotten here until the next rebalance)."""
        if app.rebalancing:
            return []  # the table's partitions are being moved: read it once they are
        if self._read_at != app.rebalancing_count:
            self._read()
        heap = self._heaps.get(partition)
        keys: dict[str, None] = {}  # in the order they expired
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            entry = self.table.get(key)
            at = None if entry is None else self.expires_at(entry)
            if at is None or key in keys:
                continue  # deleted, or rewritten to never expire, or a second pair
            if at > now:
                heapq.heappush(heap, (at, key))  # rewritten with a later time
            else:
                keys[key] = None
        return list(keys)

    def _read(self) -> None:
        self._heaps = {}
        self._read_at = app.rebalancing_count
        for key, entry in self.table.items():
            self._push(key, entry)

    def _push(self, key: str, entry: dict[str, Any]) -> None:
        at = self.expires_at(entry)
        partition = entry.get("partition")
        if at is None or not isinstance(partition, int):
            return  # entries written before they carried their partition are kept
        heapq.heappush(self._heaps.setdefault(partition, []), (at, key))
