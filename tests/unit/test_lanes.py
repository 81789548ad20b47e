"""Lanes (streams.lanes): in order within a lane, concurrent across lanes, bounded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

import pytest

from streams.lanes import Lanes

#: Guard against a hang only; no assertion depends on how long anything takes.
GUARD_S = 2.0
#: Small, varied pauses inside jobs, so that jobs interleave in many ways.
PAUSES = (0, 0.001, 0, 0.002, 0, 0, 0.001)


async def settle(turns: int = 20) -> None:
    """Let every ready task run for a few loop iterations."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def submit(lanes: Lanes, lane: Hashable | None, job: Callable[[], Awaitable[None]]) -> None:
    """`lanes.submit`, failing instead of hanging if room is never given back."""
    await asyncio.wait_for(lanes.submit(lane, job), GUARD_S)


class Tracker:
    """Records when jobs start and end and how many run at once."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object, int]] = []
        self.running = 0
        self.max_running = 0
        self.running_lanes: list[object] = []
        self.overlaps: set[frozenset[object]] = set()

    def job(self, lane: object, n: int, pause: float = 0) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.events.append(("start", lane, n))
            for other in self.running_lanes:
                self.overlaps.add(frozenset((other, lane)))
            self.running_lanes.append(lane)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            await asyncio.sleep(pause)
            await asyncio.sleep(0)
            self.running -= 1
            self.running_lanes.remove(lane)
            self.events.append(("end", lane, n))

        return run

    def of_lane(self, lane: object) -> list[tuple[str, int]]:
        return [(kind, n) for kind, ln, n in self.events if ln == lane]


async def test_one_lane_runs_in_submission_order_without_overlap() -> None:
    lanes = Lanes(concurrency=4)
    t = Tracker()
    for n in range(12):
        await submit(lanes, "g1", t.job("g1", n, PAUSES[n % len(PAUSES)]))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    expected = [(kind, n) for n in range(12) for kind in ("start", "end")]
    assert t.of_lane("g1") == expected
    assert t.max_running == 1


async def test_interleaved_lanes_each_keep_their_order() -> None:
    lanes = Lanes(concurrency=3)
    t = Tracker()
    names = ["a", "b", "c", "d"]
    for n in range(8):
        for k, name in enumerate(names):
            await submit(lanes, name, t.job(name, n, PAUSES[(n + k) % len(PAUSES)]))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    for name in names:
        # start n, end n, start n+1, ...: in order, never two of one lane at once
        assert t.of_lane(name) == [(kind, n) for n in range(8) for kind in ("start", "end")]
    assert len(t.events) == 2 * 8 * len(names)


async def test_tuple_lanes_as_used_by_the_processor() -> None:
    lanes = Lanes(concurrency=2)
    t = Tracker()
    lane = ("acme", "b-1", "tx-1")
    for n in range(5):
        await submit(lanes, lane, t.job(lane, n))
        # an equal (not identical) key is the same lane
        await submit(lanes, ("acme", "b-1", "tx-1"), t.job(lane, 100 + n))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    order = [n for kind, n in t.of_lane(lane) if kind == "start"]
    assert order == [m for n in range(5) for m in (n, 100 + n)]
    assert t.max_running == 1


async def test_different_lanes_run_at_the_same_time() -> None:
    lanes = Lanes(concurrency=4)
    a_started = asyncio.Event()
    b_started = asyncio.Event()

    async def job_a() -> None:
        a_started.set()
        # finishes only once b has started: possible only if both run at once
        await b_started.wait()

    async def job_b() -> None:
        b_started.set()
        await a_started.wait()

    await submit(lanes, "a", job_a)
    await submit(lanes, "b", job_b)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert a_started.is_set() and b_started.is_set()


async def test_different_lanes_overlap_under_load() -> None:
    lanes = Lanes(concurrency=4)
    t = Tracker()
    for n in range(3):
        for name in ("x", "y", "z"):
            await submit(lanes, name, t.job(name, n, 0.001))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert t.max_running >= 2
    assert any(len(pair) == 2 for pair in t.overlaps)
    # but a lane never overlaps itself
    assert all(len(pair) == 2 for pair in t.overlaps)


async def test_concurrency_limit_is_never_exceeded() -> None:
    lanes = Lanes(concurrency=3)
    t = Tracker()
    names = [f"lane-{k}" for k in range(10)]
    for n in range(4):
        for k, name in enumerate(names):
            await submit(lanes, name, t.job(name, n, PAUSES[(n * 3 + k) % len(PAUSES)]))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert t.max_running == 3  # reached, never exceeded
    assert len([e for e in t.events if e[0] == "end"]) == 40
    for name in names:
        assert t.of_lane(name) == [(kind, n) for n in range(4) for kind in ("start", "end")]


async def test_concurrency_limit_holds_for_jobs_without_a_lane() -> None:
    lanes = Lanes(concurrency=2)
    t = Tracker()
    for n in range(10):
        await submit(lanes, None, t.job(None, n, PAUSES[n % len(PAUSES)]))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert t.max_running == 2
    assert len([e for e in t.events if e[0] == "end"]) == 10


async def test_lane_none_runs_each_job_on_its_own() -> None:
    lanes = Lanes(concurrency=4)
    first_started = asyncio.Event()
    second_started = asyncio.Event()

    async def first() -> None:
        first_started.set()
        # in one shared lane this would wait forever: the second job could not start
        await second_started.wait()

    async def second() -> None:
        second_started.set()
        await first_started.wait()

    await submit(lanes, None, first)
    await submit(lanes, None, second)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert first_started.is_set() and second_started.is_set()
    assert lanes.pending == 0


async def test_jobs_without_a_lane_that_wait_all_run_at_once_up_to_the_limit() -> None:
    # a drainer that takes a job while more wait starts the next one: if it did not, these
    # jobs (each waiting for all of them to have started) would never finish
    lanes = Lanes(concurrency=8, max_pending=8)
    started = 0
    all_started = asyncio.Event()

    async def job() -> None:
        nonlocal started
        started += 1
        if started == 8:
            all_started.set()
        await all_started.wait()

    for _ in range(8):
        await lanes.submit(None, job)  # room for all: no submit lets a job start meanwhile
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert started == 8 and lanes.busy == 0 and lanes.pending == 0


async def test_a_failing_job_does_not_stop_its_lane(caplog: pytest.LogCaptureFixture) -> None:
    # max_pending=2: the later submits wait for room, which failed jobs must give back too
    lanes = Lanes(concurrency=2, max_pending=2)
    ran: list[int] = []

    def job(n: int, fail: bool = False) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await asyncio.sleep(0)
            ran.append(n)
            if fail:
                raise RuntimeError(f"job {n} failed")

        return run

    with caplog.at_level(logging.ERROR, logger="streams.lanes"):
        await submit(lanes, "g", job(0))
        await submit(lanes, "g", job(1, fail=True))
        await submit(lanes, "g", job(2))
        await submit(lanes, "g", job(3, fail=True))
        await submit(lanes, "g", job(4))
        await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert ran == [0, 1, 2, 3, 4]
    failures = [r for r in caplog.records if r.name == "streams.lanes"]
    assert len(failures) == 2
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures)
    # the lane still takes new jobs
    more: list[int] = []

    async def extra() -> None:
        more.append(1)

    await submit(lanes, "g", extra)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert more == [1]


async def test_a_failing_job_without_a_lane_does_not_affect_others() -> None:
    lanes = Lanes(concurrency=1, max_pending=1)
    ran: list[str] = []

    async def bad() -> None:
        ran.append("bad")
        raise ValueError("nope")

    async def good() -> None:
        ran.append("good")

    await submit(lanes, None, bad)
    # max_pending=1: this waits for the failed job to give back its room
    await submit(lanes, None, good)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert ran == ["bad", "good"]


async def test_back_pressure_third_submit_waits_for_a_job_to_finish() -> None:
    lanes = Lanes(concurrency=4, max_pending=2)
    release = asyncio.Event()
    started: list[str] = []

    def blocked(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started.append(name)
            await release.wait()

        return run

    await submit(lanes, "a", blocked("a"))
    await submit(lanes, "b", blocked("b"))
    third = asyncio.ensure_future(lanes.submit("c", blocked("c")))
    await settle()
    assert sorted(started) == ["a", "b"]
    assert not third.done()  # waiting for room, however long we let it try
    await settle()
    assert not third.done()

    release.set()
    await asyncio.wait_for(third, GUARD_S)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert sorted(started) == ["a", "b", "c"]


async def test_back_pressure_counts_queued_jobs_of_one_lane() -> None:
    lanes = Lanes(concurrency=4, max_pending=2)
    gate = asyncio.Event()
    done: list[int] = []

    def job(n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await gate.wait()
            done.append(n)

        return run

    await submit(lanes, "g", job(0))  # running (blocked)
    await submit(lanes, "g", job(1))  # queued behind it
    assert lanes.pending == 2
    third = asyncio.ensure_future(lanes.submit("g", job(2)))
    await settle()
    assert not third.done()
    gate.set()
    await asyncio.wait_for(third, GUARD_S)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert done == [0, 1, 2]
    assert lanes.pending == 0


async def test_back_pressure_releases_one_submit_per_finished_job() -> None:
    lanes = Lanes(concurrency=4, max_pending=2)
    gates = {name: asyncio.Event() for name in ("a", "b", "c", "d")}

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await gates[name].wait()

        return run

    await submit(lanes, "a", job("a"))
    await submit(lanes, "b", job("b"))
    third = asyncio.ensure_future(lanes.submit("c", job("c")))
    await settle()
    fourth = asyncio.ensure_future(lanes.submit("d", job("d")))
    await settle()
    assert not third.done() and not fourth.done()

    gates["a"].set()  # one job finishes: room for one more submit
    await asyncio.wait_for(third, GUARD_S)
    await settle()
    assert not fourth.done()

    gates["b"].set()
    await asyncio.wait_for(fourth, GUARD_S)
    gates["c"].set()
    gates["d"].set()
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)


async def test_wait_idle_returns_after_every_job_ran() -> None:
    lanes = Lanes(concurrency=3)
    finished: list[tuple[str, int]] = []

    def job(lane: str, n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for _ in range(n % 4):
                await asyncio.sleep(0)
            finished.append((lane, n))

        return run

    for n in range(6):
        for lane in ("p", "q", "r", "s"):
            await submit(lanes, lane, job(lane, n))
        await submit(lanes, None, job("none", n))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert len(finished) == 6 * 5
    assert sorted(finished) == sorted(
        [(lane, n) for n in range(6) for lane in ("p", "q", "r", "s", "none")]
    )
    assert lanes.pending == 0


async def test_wait_idle_waits_for_jobs_submitted_meanwhile() -> None:
    lanes = Lanes(concurrency=2)
    ran: list[str] = []

    async def late() -> None:
        await asyncio.sleep(0)
        ran.append("late")

    async def spawner() -> None:
        await asyncio.sleep(0)
        ran.append("spawner")
        await submit(lanes, "other", late)

    await submit(lanes, "first", spawner)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert ran == ["spawner", "late"]


async def test_wait_idle_on_idle_lanes_returns_at_once() -> None:
    lanes = Lanes(concurrency=1)
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert lanes.pending == 0


async def test_a_lane_is_reusable_after_it_drained() -> None:
    lanes = Lanes(concurrency=2)
    t = Tracker()
    await submit(lanes, "g", t.job("g", 0))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert lanes.pending == 0
    await submit(lanes, "g", t.job("g", 1))
    await submit(lanes, "g", t.job("g", 2))
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert t.of_lane("g") == [(kind, n) for n in range(3) for kind in ("start", "end")]


async def test_a_job_raising_cancelled_error_does_not_drop_its_lane() -> None:
    lanes = Lanes(concurrency=2, max_pending=3)
    ran: list[int] = []
    go = asyncio.Event()

    async def cancelled() -> None:
        await go.wait()  # the lane's later jobs are queued behind this one
        raise asyncio.CancelledError

    def ok(n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            ran.append(n)

        return run

    await submit(lanes, "g", cancelled)
    await submit(lanes, "g", ok(1))
    await submit(lanes, "g", ok(2))
    assert lanes.pending == 3
    go.set()
    await asyncio.wait_for(lanes.wait_idle(), GUARD_S)
    assert ran == [1, 2]
