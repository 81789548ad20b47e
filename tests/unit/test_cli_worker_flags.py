"""`batchwire worker` flags reach the worker's tunables (no broker: run_worker is replaced)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

import streams.worker
from streams.cli import main


def test_session_timeout_reaches_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(streams.worker, "run_worker", lambda **kw: seen.update(kw))
    result = CliRunner().invoke(main, ["worker", "--session-timeout", "10"])
    assert result.exit_code == 0, result.output
    assert seen["tunables"].session_timeout_s == 10.0


def test_the_default_session_timeout_is_faust_s(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(streams.worker, "run_worker", lambda **kw: seen.update(kw))
    assert CliRunner().invoke(main, ["worker"]).exit_code == 0
    assert seen["tunables"].session_timeout_s == 60.0


@pytest.mark.parametrize("seconds", ["3", "600", "soon"])
def test_a_session_timeout_the_broker_would_refuse_is_a_usage_error(seconds: str) -> None:
    result = CliRunner().invoke(main, ["worker", "--session-timeout", seconds])
    assert result.exit_code == 2
    assert "--session-timeout" in result.output


def test_processes_reach_the_worker_and_default_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(streams.worker, "run_worker", lambda **kw: seen.update(kw))
    assert CliRunner().invoke(main, ["worker"]).exit_code == 0
    assert seen["tunables"].processes == 0
    assert CliRunner().invoke(main, ["worker", "--processes", "3"]).exit_code == 0
    assert seen["tunables"].processes == 3


def test_negative_processes_are_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["worker", "--processes", "-1"])
    assert result.exit_code == 2
    assert "--processes" in result.output


def test_stop_timeout_reaches_the_worker_and_defaults_to_30(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(streams.worker, "run_worker", lambda **kw: seen.update(kw))
    assert CliRunner().invoke(main, ["worker"]).exit_code == 0
    assert seen["tunables"].stop_timeout_s == 30.0
    assert CliRunner().invoke(main, ["worker", "--stop-timeout", "5"]).exit_code == 0
    assert seen["tunables"].stop_timeout_s == 5.0


@pytest.mark.parametrize("seconds", ["0", "601", "never"])
def test_a_stop_timeout_out_of_range_is_a_usage_error(seconds: str) -> None:
    result = CliRunner().invoke(main, ["worker", "--stop-timeout", seconds])
    assert result.exit_code == 2
    assert "--stop-timeout" in result.output
