"""The CPU a scenario costs, per item, summed over every process that takes part in it.

Items/s says how fast; CPU per item says how much work, process by process, apart from the
waiting, and how far one pipeline is from another: a pipeline that spends 4x the CPU per
item cannot go faster than a quarter of the other on the same cores once both are busy.
Both move with a shared machine's neighbours (a busy neighbour slows each instruction: the
worker spent 8.4 to 13.8 s of CPU on the same 100,000 items at different hours of one
evening), so compare the sides of one run.

Read from `/proc/<pid>/stat` (Linux): user + system time of a process and its live
descendants (a worker's item processes, Celery's pool). A descendant that exits during the
scenario takes its time with it, so a figure can only come out low, never high.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_cpu_s(path: Path) -> float:
    """User + system CPU seconds in a `stat` file of /proc (a process's or a thread's)."""
    stat = path.read_text()
    # the name between parentheses may hold spaces; `state` is the first field after it,
    # so utime and stime (fields 14 and 15 of proc(5)) are the 12th and 13th from there
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def process_cpu_s(pid: int, *, descendants: bool = True) -> float:
    """User + system CPU seconds of `pid` (and its live descendants); 0 for a process gone."""
    try:
        own = _stat_cpu_s(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0
    if not descendants:
        return own
    return own + sum(process_cpu_s(child) for child in child_pids(pid))


def jit_cpu_s(pid: int) -> float:
    """CPU seconds of a JVM's just-in-time compiler threads (`C1 CompilerThread0`, `C2 ...`,
    as HotSpot names them); 0 for another process."""
    total = 0.0
    for task in _tasks(pid):
        with contextlib.suppress(OSError):
            if "CompilerThre" in (task / "comm").read_text():
                total += _stat_cpu_s(task / "stat")
    return total


def child_pids(pid: int) -> list[int]:
    """The live children of `pid`, whichever of its threads started them."""
    found: list[int] = []
    for task in _tasks(pid):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _tasks(pid: int) -> list[Path]:
    """The /proc directories of `pid`'s threads; none for a process gone."""
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []


@dataclass
class CpuMeter:
    """CPU seconds used since `start` by the bench's own process (`bench`: the client, or
    the whole raw-limit pipeline) and by each named group of other processes with their
    descendants (e.g. the worker, the broker). The bench's descendants are not its own:
    the broker and the workers are its children."""

    pids: dict[str, list[int]]
    at_start: dict[str, float]

    @classmethod
    def start(cls, pids: dict[str, list[int]]) -> CpuMeter:
        return cls(pids, cls._read(pids))

    @staticmethod
    def _read(pids: dict[str, list[int]]) -> dict[str, float]:
        read = {name: sum(process_cpu_s(pid) for pid in group) for name, group in pids.items()}
        return {"bench": process_cpu_s(os.getpid(), descendants=False), **read}

    def used(self, items: int) -> dict[str, object]:
        """`cpu_s` per process and in all, and `cpu_us_per_item` over `items` items."""
        now = self._read(self.pids)
        used = {name: round(max(now[name] - self.at_start[name], 0.0), 2) for name in now}
        total = sum(used.values())
        return {
            "cpu_s": {**used, "all": round(total, 2)},
            "cpu_us_per_item": round(total / items * 1e6, 1) if items else None,
        }
