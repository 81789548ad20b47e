"""`streams.registrations`: a submit waits for the aggregator to know its batch."""

from __future__ import annotations

import asyncio

from streams import registrations


async def test_a_known_batch_is_not_waited_for() -> None:
    assert await registrations.wait_known("acme/b", lambda: True, 5.0) is True
    assert "acme/b" not in registrations._waiters


async def test_the_wait_ends_when_the_aggregator_writes_the_state() -> None:
    written: set[str] = set()
    waits = [
        asyncio.ensure_future(registrations.wait_known("acme/b", lambda: "acme/b" in written, 5))
        for _ in range(2)
    ]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waits)
    registrations.known("acme/other")  # another batch wakes no one
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waits)
    written.add("acme/b")
    registrations.known("acme/b")
    assert await asyncio.wait_for(asyncio.gather(*waits), 1.0) == [True, True]
    assert registrations._waiters == {}


async def test_a_batch_not_known_in_time_is_false_and_leaves_no_waiter() -> None:
    assert await registrations.wait_known("acme/late", lambda: False, 0.02) is False
    assert registrations._waiters == {}
