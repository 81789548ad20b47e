"""`Expiries` finds a table's expired entries per partition from its heaps (the table is a
dict here; the worker's is a faust table): only what expired, in expiry order, checked
against the table's current entry, and read again from the table after a rebalance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast
from weakref import ref

import pytest
from faust.streams import _current_event

from streams.app import app
from streams.expiry import Expiries
from streams.tables import BatchwireTable


class DictTable(dict[str, Any]):
    name = "test-table"


class Event:
    """What `Expiries.put` reads of faust's current event (weakly referenced, as faust does)."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@contextmanager
def handling(partition: int) -> Iterator[None]:
    """As while faust hands the agent an event of `partition`."""
    event = Event(partition)
    token = _current_event.set(ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


@pytest.fixture
def table() -> DictTable:
    return DictTable()


@pytest.fixture
def expiries(table: DictTable) -> Expiries:
    return Expiries(cast(BatchwireTable, table), lambda entry: entry.get("at"))


def test_only_the_partitions_expired_entries_in_expiry_order(
    table: DictTable, expiries: Expiries
) -> None:
    with handling(3):
        expiries.put("c", {"at": 30.0})
        expiries.put("a", {"at": 10.0})
        expiries.put("later", {"at": 99.0})
    with handling(5):
        expiries.put("other", {"at": 5.0})
    assert table["a"] == {"at": 10.0, "partition": 3}
    assert expiries.expired(3, 50.0) == ["a", "c"]
    assert expiries.expired(3, 50.0) == []  # popped: the caller deletes them
    assert expiries.expired(5, 50.0) == ["other"]
    assert expiries.expired(3, 99.0) == ["later"]


def test_an_entry_deleted_or_rewritten_since_is_judged_by_what_the_table_holds(
    table: DictTable, expiries: Expiries
) -> None:
    with handling(0):
        expiries.put("gone", {"at": 1.0})
        expiries.put("moved", {"at": 2.0})
        expiries.put("never", {"at": 3.0})
    del table["gone"]
    with handling(0):
        expiries.put("moved", {"at": 20.0})
    table["never"] = {"partition": 0}  # rewritten without a time
    assert expiries.expired(0, 10.0) == []
    assert expiries.expired(0, 20.0) == ["moved"]  # once, though it was put twice


def test_the_table_is_read_at_the_first_call_and_again_after_each_rebalance(
    table: DictTable, expiries: Expiries, monkeypatch: pytest.MonkeyPatch
) -> None:
    table["restored"] = {"at": 1.0, "partition": 2}  # from the changelog, say
    table["legacy"] = {"at": 1.0}  # written before entries carried their partition
    assert expiries.expired(2, 5.0) == ["restored"]
    table["assigned"] = {"at": 1.0, "partition": 2}  # came with a partition
    assert expiries.expired(2, 5.0) == []  # not read again without a rebalance
    monkeypatch.setattr(app, "rebalancing", True)
    assert expiries.expired(2, 5.0) == []  # nor while the partitions move
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "rebalancing_count", app.rebalancing_count + 1)
    assert sorted(expiries.expired(2, 5.0)) == ["assigned", "restored"]


def test_writing_outside_an_event_is_refused(expiries: Expiries) -> None:
    with pytest.raises(RuntimeError, match="test-table"):
        expiries.put("k", {"at": 1.0})
