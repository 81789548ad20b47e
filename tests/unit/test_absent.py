"""A batch a worker does not hold is 404 `not_found`, but 503 `unavailable` while the
worker is taking partitions over: the batch may be in one not read in yet. One it holds is
503 then too: it may be read in only part way."""

from __future__ import annotations

import pytest

from streams.api import batches
from streams.api.batches import BatchView
from streams.api.dashboard import LocalBatches
from streams.api.errors import ApiError
from streams.api.views import absent
from streams.app import app
from streams.keys import batch_key


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


class _Key:
    """The parts of a view `state_or_404` uses: the tenants of the request's key."""

    def lookup_tenants(self, request: object) -> frozenset[str]:
        return frozenset({"acme"})


@pytest.mark.parametrize(("rebalancing", "in_recovery"), [(True, False), (False, True)])
def test_a_held_batch_is_not_answered_while_partitions_are_moving(
    monkeypatch: pytest.MonkeyPatch, rebalancing: bool, in_recovery: bool
) -> None:
    """A batch read in part way would show an older status (a status polled across a
    rebalance stepping back), so a lookup answers 503 until the tables are read in."""
    held = {batch_key("acme", "b"): {"tenant": "acme", "batch_id": "b", "status": "in_progress"}}
    monkeypatch.setattr(batches, "batch_state", held)
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "in_recovery", False)
    assert BatchView.state_or_404(_Key(), None, "b")["status"] == "in_progress"  # type: ignore[arg-type]

    monkeypatch.setattr(app, "rebalancing", rebalancing)
    monkeypatch.setattr(app, "in_recovery", in_recovery)
    with pytest.raises(ApiError) as raised:
        BatchView.state_or_404(_Key(), None, "b")  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.status) == ("unavailable", 503)


class _Tenants:
    def tenants(self, request: object) -> frozenset[str]:
        return frozenset({"acme"})


async def test_the_dashboard_read_waits_for_the_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's batch counts for the dashboard are not read from tables read in part way."""
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "in_recovery", True)
    with pytest.raises(ApiError) as raised:
        await LocalBatches.get(_Tenants(), None)  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.status) == ("unavailable", 503)


def test_a_stopping_worker_answers_503_for_its_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust closes a stopping worker's table stores before its web server: a held batch
    would look absent (a 404 seen when a worker left mid-batch)."""
    held = {batch_key("acme", "b"): {"tenant": "acme", "batch_id": "b", "status": "in_progress"}}
    monkeypatch.setattr(batches, "batch_state", held)
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "in_recovery", False)
    monkeypatch.setattr(type(app), "should_stop", property(lambda self: True))
    with pytest.raises(ApiError) as raised:
        BatchView.state_or_404(_Key(), None, "b")  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.status) == ("unavailable", 503)
    assert "stopping" in raised.value.message
    error = absent("no batch 'c' for this key")
    assert (error.code, error.status) == ("unavailable", 503)
