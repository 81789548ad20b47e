"""A queue that hands out its entries round-robin by tenant.

The item processor reads ahead into one of these, so the next item it starts is the oldest
of the next tenant in turn, not the oldest of the whole topic: a tenant's big batch cannot
make another tenant's small one wait behind it. Within a tenant the order is kept (a
transaction group's items stay in submission order).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """For one putter and one getter (the processor's fetch loop and its dispatcher)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tenants: OrderedDict[str, deque[T]] = OrderedDict()
        self._size = 0
        self._not_empty = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        """At capacity: the putter stops fetching until an entry is taken."""
        return self._size >= self.capacity

    def put(self, tenant: str, entry: T) -> None:
        """Append `entry` to its tenant's queue (a batch of puts may overshoot capacity)."""
        queue = self._tenants.get(tenant)
        if queue is None:
            queue = self._tenants[tenant] = deque()
        queue.append(entry)
        self._size += 1
        self._not_empty.set()
        if self.full():
            self._has_room.clear()

    async def get(self) -> T:
        """The oldest entry of the tenant whose turn it is; waits while the queue is empty."""
        while not self._size:
            self._not_empty.clear()
            await self._not_empty.wait()
        tenant, queue = next(iter(self._tenants.items()))
        entry = queue.popleft()
        self._size -= 1
        if queue:
            self._tenants.move_to_end(tenant)
        else:
            del self._tenants[tenant]
        if not self.full():
            self._has_room.set()
        return entry

    async def wait_for_room(self) -> None:
        await self._has_room.wait()
