"""streams.fair: round-robin by tenant, order kept within a tenant, bounded."""

from __future__ import annotations

import asyncio

from streams.fair import FairQueue


async def test_tenants_take_turns_and_keep_their_own_order() -> None:
    queue: FairQueue[str] = FairQueue(capacity=100)
    for i in range(5):
        queue.put("a", f"a{i}")
    queue.put("b", "b0")
    queue.put("b", "b1")
    queue.put("c", "c0")
    taken = [await queue.get() for _ in range(len(queue))]
    assert taken == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert len(queue) == 0


async def test_a_full_queue_makes_the_putter_wait_until_one_is_taken() -> None:
    queue: FairQueue[int] = FairQueue(capacity=2)
    queue.put("a", 1)
    queue.put("a", 2)
    assert queue.full()
    room = asyncio.ensure_future(queue.wait_for_room())
    await asyncio.sleep(0.01)
    assert not room.done()
    assert await queue.get() == 1
    await asyncio.wait_for(room, 1.0)


async def test_get_waits_for_a_put() -> None:
    queue: FairQueue[str] = FairQueue(capacity=4)
    taker = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0.01)
    assert not taker.done()
    queue.put("b", "x")
    assert await asyncio.wait_for(taker, 1.0) == "x"
