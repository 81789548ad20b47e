"""Timestamps as the contract shows them: ISO-8601 in UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC).isoformat(
        timespec="milliseconds"
    )
