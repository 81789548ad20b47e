"""Timestamps as the contract shows them: ISO-8601 in UTC."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc).isoformat(
        timespec="milliseconds"
    )
