"""A batch a worker does not hold is 404 `not_found`, but 503 `unavailable` while the
worker is taking partitions over: the batch may be in one not read in yet."""

from __future__ import annotations

import pytest

from streams.api.views import absent
from streams.app import app


@pytest.mark.parametrize(
    ("rebalancing", "in_recovery", "code", "status"),
    [
        (False, False, "not_found", 404),
        (True, False, "unavailable", 503),
        (False, True, "unavailable", 503),
    ],
)
def test_absent_is_not_found_unless_partitions_are_moving(
    monkeypatch: pytest.MonkeyPatch, rebalancing: bool, in_recovery: bool, code: str, status: int
) -> None:
    monkeypatch.setattr(app, "rebalancing", rebalancing)
    monkeypatch.setattr(app, "in_recovery", in_recovery)
    error = absent("no batch 'b' for this key")
    assert (error.code, error.status) == (code, status)
    assert error.headers.get("Retry-After") == ("5" if code == "unavailable" else None)
