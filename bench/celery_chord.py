"""The same jobs as a Celery chord: N no-op tasks fanned out, one callback when all ended.

A chord is timed from just before `apply_async` (which publishes every header task from
this process, as a Celery user's code would) to the moment its callback's result is read.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import latency_summary, rate

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WorkerConfig:
    """How the Celery worker runs: `celery worker --pool P --concurrency C
    --prefetch-multiplier M`, in `processes` worker processes."""

    pool: str
    concurrency: int
    prefetch: int
    processes: int = 1

    def label(self) -> str:
        return f"{self.pool} x{self.concurrency}, prefetch {self.prefetch}" + (
            f", {self.processes} workers" if self.processes > 1 else ""
        )


#: Chosen by `--celery-tune` on this 2-core machine (bench/README.md): for no-op
#: tasks the prefork and threads pools cost far more than the task (27-33 tasks/s), while
#: `solo` processes prefetching deeply keep up with the client publishing the chord; two of
#: them (one a core) were the best or equal best.
BEST = WorkerConfig(pool="solo", concurrency=1, prefetch=256, processes=2)
#: What `--celery-tune` tries.
CANDIDATES = (
    WorkerConfig("prefork", 2, 4),
    WorkerConfig("prefork", 2, 64),
    WorkerConfig("threads", 4, 64),
    WorkerConfig("solo", 1, 256),
    WorkerConfig("solo", 1, 256, processes=2),
)


@contextlib.contextmanager
def celery_workers(redis_url: str, config: WorkerConfig, logdir: Path) -> Iterator[list[int]]:
    """`config.processes` Celery workers on `redis_url`, ready, stopped on exit; yields
    their pids."""
    env = {**os.environ, "BENCH_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(config.processes):
            with (logdir / f"celery-{config.pool}-{n}.log").open("ab") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker",
                         "--pool", config.pool, "--concurrency", str(config.concurrency),
                         "--prefetch-multiplier", str(config.prefetch),
                         "--hostname", f"bench{n}@%h", "--loglevel", "WARNING",
                         "--without-gossip", "--without-mingle", "--without-heartbeat"],
                        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )  # fmt: skip
        _wait_ready(procs)
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_ready(procs: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    """Ready once a small chord has gone through (each process answers a ping too)."""
    from bench.celery_app import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a Celery worker exited at start; see its log")
        answers = app.control.ping(timeout=1.0) or []
        if len(answers) >= len(procs):
            chord_seconds(10, time_limit_s=max(deadline - time.monotonic(), 1.0))
            return
    raise RuntimeError(f"the Celery workers were not ready in {timeout:.0f} s")


def _chord(tasks: int) -> Any:
    from celery import chord

    from bench.celery_app import done, noop

    return chord((noop.s(i) for i in range(tasks)), done.s())


def chord_seconds(tasks: int, *, time_limit_s: float) -> float:
    """One chord of `tasks` no-op tasks: apply to callback result."""
    started = time.monotonic()
    result = _chord(tasks).apply_async()
    got = result.get(timeout=time_limit_s, interval=0.01)
    seconds = time.monotonic() - started
    if got != tasks:
        raise RuntimeError(f"the chord callback saw {got} results of {tasks}")
    return seconds


def one_chord(tasks: int, *, time_limit_s: float) -> dict[str, Any]:
    """(a) as a chord."""
    seconds = chord_seconds(tasks, time_limit_s=time_limit_s)
    return {"items": tasks, "seconds": seconds, "items_per_s": rate(tasks, seconds)}


def many_chords(chords: int, tasks: int, *, time_limit_s: float) -> dict[str, Any]:
    """(b) as chords: `chords` chords of `tasks` tasks applied together, to the last
    callback result."""
    started = time.monotonic()
    results = [_chord(tasks).apply_async() for _ in range(chords)]
    deadline = started + time_limit_s
    ended = 0
    for result in results:
        if result.get(timeout=max(deadline - time.monotonic(), 0.1), interval=0.01) == tasks:
            ended += 1
    seconds = time.monotonic() - started
    return {
        "items": chords * tasks,
        "batches": chords,
        "ended": ended,
        "seconds": seconds,
        "items_per_s": rate(ended * tasks, seconds),
    }


def chord_latency(chords: int, tasks: int, *, time_limit_s: float) -> dict[str, Any]:
    """(c)-style: chords of `tasks` tasks one at a time, apply to callback result; one
    warm-up chord first (not counted)."""
    deadline = time.monotonic() + time_limit_s
    samples: list[float] = []
    for n in range(chords + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        seconds = chord_seconds(tasks, time_limit_s=remaining)
        if n:
            samples.append(seconds)
    return {
        "batches": len(samples),
        "items_per_batch": tasks,
        "submit_to_callback": latency_summary(samples),
    }
