"""`ReusedScans`: a table read is reused for REUSE times as long as it took, at least
MIN_AGE_S (the dashboard's reads of every batch state)."""

from __future__ import annotations

from streams.reused_scans import MAX_KEPT, MIN_AGE_S, REUSE, ReusedScans


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_quick_scan_is_made_again_after_the_minimum_age() -> None:
    clock = Clock()
    scans = ReusedScans(clock)
    made: list[float] = []

    def scan() -> float:
        made.append(clock.now)
        return clock.now

    assert scans.answer("acme", scan) == 1000.0
    clock.now += MIN_AGE_S - 0.01
    assert scans.answer("acme", scan) == 1000.0  # reused
    clock.now += 0.02
    assert scans.answer("acme", scan) == clock.now
    assert len(made) == 2


def test_a_slow_scan_is_reused_for_reuse_times_its_duration() -> None:
    clock = Clock()
    scans = ReusedScans(clock)
    calls = 0

    def slow_scan() -> int:
        nonlocal calls
        calls += 1
        clock.now += 0.5  # the read took half a second
        return calls

    assert scans.answer("acme", slow_scan) == 1
    clock.now += REUSE * 0.5 - 0.6  # still within REUSE x 0.5 s of the read's start
    assert scans.answer("acme", slow_scan) == 1
    clock.now += 0.2
    assert scans.answer("acme", slow_scan) == 2


def test_each_key_has_its_own_answer_and_the_oldest_goes_first() -> None:
    clock = Clock()
    scans = ReusedScans(clock)
    for n in range(MAX_KEPT + 1):
        assert scans.answer(frozenset({f"t{n}"}), lambda n=n: n) == n
    assert scans.answer(frozenset({"t1"}), lambda: "again") == 1  # kept
    assert scans.answer(frozenset({"t0"}), lambda: "again") == "again"  # dropped, read again
