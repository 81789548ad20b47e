"""`iso` writes what `datetime.isoformat` writes, from its cache of the current second."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from streams.clock import iso


def reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def test_iso_matches_datetime_for_many_timestamps() -> None:
    rng = random.Random(7)
    base = 1_796_000_000.0
    stamps = [base + rng.uniform(0, 5) for _ in range(20_000)]  # same and next seconds
    stamps += [rng.uniform(0, 4_000_000_000) for _ in range(20_000)]
    stamps += [base + 0.9999995, base + 0.9995, base + 0.0005, base + 0.999999, 0.0, -1.5]
    for ts in stamps:
        assert iso(ts) == reference(ts), ts


def test_iso_without_a_timestamp_is_now() -> None:
    before = datetime.now(UTC)
    stamped = datetime.fromisoformat(iso())
    after = datetime.now(UTC)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= stamped <= after
