"""`/healthz` says not ready, rather than failing, while faust's consumer has not started."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.exceptions import ConsumerNotStarted

from streams.api import health
from streams.app import app


def _consumer(assignment: object) -> SimpleNamespace:
    def assigned() -> object:
        if isinstance(assignment, Exception):
            raise assignment
        return assignment

    return SimpleNamespace(assignment=assigned)


def test_not_ready_before_the_consumer_starts_then_ready_once_assigned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "in_recovery", False)
    monkeypatch.setattr(app, "consumer", _consumer(ConsumerNotStarted("not yet")))
    assert health.is_ready() is False
    monkeypatch.setattr(app, "consumer", _consumer({"tp"}))
    assert health.is_ready() is True
    monkeypatch.setattr(app, "consumer", _consumer(set()))
    assert health.is_ready() is False
