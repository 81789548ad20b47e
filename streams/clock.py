"""Timestamps as the contract shows them: ISO-8601 in UTC, to the millisecond."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

#: (whole second, its text without the offset): a busy worker stamps thousands of results a
#: second, and formatting each through `datetime` was ~3% of its core
_second: tuple[int, str] = (-1, "")


def iso(ts: float | None = None) -> str:
    """`ts` (default now) as `2026-12-03T07:40:00.123+00:00`, as `datetime.isoformat` writes
    it with `timespec="milliseconds"`."""
    global _second
    if ts is None:
        ts = time.time()
    if ts < 0:
        return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)  # half to even, as `datetime.fromtimestamp` rounds
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if _second[0] != second:
        _second = (second, datetime.fromtimestamp(second, tz=UTC).isoformat()[:-6])
    return f"{_second[1]}.{micros // 1000:03d}+00:00"
