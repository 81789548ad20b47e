"""`ReusedScans`: a table read is reused for REUSE times as long as it took, at least
MIN_AGE_S (the dashboard's reads of every batch state), and requests during a read share it."""

from __future__ import annotations

import asyncio

import pytest

from streams.reused_scans import MAX_KEPT, MIN_AGE_S, REUSE, ReusedScans


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_quick_scan_is_made_again_after_the_minimum_age() -> None:
    clock = Clock()
    scans = ReusedScans(clock)
    made: list[float] = []

    async def scan() -> float:
        made.append(clock.now)
        return clock.now

    assert await scans.answer("acme", scan) == 1000.0
    clock.now += MIN_AGE_S - 0.01
    assert await scans.answer("acme", scan) == 1000.0  # reused
    clock.now += 0.02
    assert await scans.answer("acme", scan) == clock.now
    assert len(made) == 2


async def test_a_slow_scan_is_reused_for_reuse_times_its_duration() -> None:
    clock = Clock()
    scans = ReusedScans(clock)
    calls = 0

    async def slow_scan() -> int:
        nonlocal calls
        calls += 1
        clock.now += 0.5  # the read took half a second
        return calls

    assert await scans.answer("acme", slow_scan) == 1
    clock.now += REUSE * 0.5 - 0.6  # still within REUSE x 0.5 s of the read's start
    assert await scans.answer("acme", slow_scan) == 1
    clock.now += 0.2
    assert await scans.answer("acme", slow_scan) == 2


async def test_each_key_has_its_own_answer_and_the_oldest_goes_first() -> None:
    clock = Clock()
    scans = ReusedScans(clock)

    def value(v: object) -> object:
        async def scan() -> object:
            return v

        return scan

    for n in range(MAX_KEPT + 1):
        assert await scans.answer(frozenset({f"t{n}"}), value(n)) == n
    assert await scans.answer(frozenset({"t1"}), value("again")) == 1  # kept
    assert await scans.answer(frozenset({"t0"}), value("again")) == "again"  # dropped


async def test_requests_during_a_read_wait_for_it_and_a_failed_read_is_not_kept() -> None:
    scans = ReusedScans(Clock())
    release = asyncio.Event()
    calls = 0

    async def scan() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        if calls == 1:
            raise RuntimeError("the partitions changed")
        return calls

    waiting = [asyncio.ensure_future(scans.answer("acme", scan)) for _ in range(3)]
    await asyncio.sleep(0.01)
    release.set()
    for one in waiting:
        with pytest.raises(RuntimeError):
            await one
    assert calls == 1  # one read for the three requests
    assert await scans.answer("acme", scan) == 2  # read again: the failure was not kept
