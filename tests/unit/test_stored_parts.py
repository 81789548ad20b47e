"""Stored part pieces are kept as their ledger events and read through a small cache
of decoded pieces (the store is a dict here; the worker's is a table): reads after the
first skip the store, the cache stays bounded, and a dropped piece is gone from both."""

from __future__ import annotations

from typing import Any

import pytest

from streams import ledger_pieces, stored_parts
from streams.keys import part_key
from streams.ledger_pieces import Piece
from streams.messages import part_fields
from streams.validation import validate_submission


class CountingStore(dict[str, Any]):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> CountingStore:
    store = CountingStore()
    monkeypatch.setattr(stored_parts, "batch_parts", store)
    monkeypatch.setattr(stored_parts, "_cache", type(stored_parts._cache)())
    return store


def part(batch_id: str, number: int, piece: int = 0) -> Piece:
    """A piece with one item whose index tells the piece apart."""
    sub = validate_submission(
        {
            "tenant": "acme",
            "batch_id": batch_id,
            "items": [{"namespace": "a", "action": "b", "params": {}}],
        },
        allowed_tenants=frozenset({"acme"}),
        max_items=1000,
        first_index=number * 10 + piece,
    )
    (made,) = ledger_pieces.make(part_fields(sub, 1.0, "2026-01-01T00:00:00Z", 500), sub.items)
    return Piece(
        {**made.fields, "part": number, "piece": piece}, made.items, made.prefix, made.suffix
    )


def event(batch_id: str, number: int, piece: int = 0) -> bytes:
    return ledger_pieces.encode(part(batch_id, number, piece))


def put(batch_id: str, number: int, piece: int = 0) -> None:
    stored_parts.put("acme", batch_id, number, piece, event(batch_id, number, piece))


def test_a_stored_part_is_read_from_the_store_once(store: CountingStore) -> None:
    put("b1", 0)
    assert store[part_key("acme", "b1", 0)] == event("b1", 0)
    for _ in range(3):
        assert stored_parts.get("acme", "b1", 0, 0) == part("b1", 0)
    assert store.reads == 1
    assert stored_parts.get("acme", "b1", 1, 0) is None
    assert stored_parts.get("acme", "b1", 0, 1) is None


def test_the_pieces_of_a_part_are_stored_apart(store: CountingStore) -> None:
    """The first piece under the part's own key, where whole parts were stored before."""
    for piece in range(3):
        put("b1", 0, piece)
    assert len(store) == 3
    assert store[part_key("acme", "b1", 0)] == event("b1", 0, 0)
    for piece in (2, 0, 1):
        assert stored_parts.get("acme", "b1", 0, piece) == part("b1", 0, piece)
    stored_parts.drop("acme", "b1", 0, 1)
    assert stored_parts.get("acme", "b1", 0, 1) is None
    assert stored_parts.get("acme", "b1", 0, 2) == part("b1", 0, 2)


def test_arriving_parts_keep_the_part_being_read_cached(store: CountingStore) -> None:
    put("b1", 0)
    assert stored_parts.get("acme", "b1", 0, 0) == part("b1", 0)
    for n in range(1, stored_parts.CACHED_PARTS + 3):
        put("b1", n)
    assert stored_parts.get("acme", "b1", 0, 0) == part("b1", 0)
    assert store.reads == 1
    assert len(stored_parts._cache) == stored_parts.CACHED_PARTS


def test_the_cache_keeps_only_the_latest_parts_read(store: CountingStore) -> None:
    for n in range(stored_parts.CACHED_PARTS + 2):
        put("b1", n)
        stored_parts.get("acme", "b1", n, 0)
    assert len(stored_parts._cache) == stored_parts.CACHED_PARTS
    assert stored_parts.get("acme", "b1", 0, 0) == part("b1", 0)  # evicted: read again
    assert store.reads == stored_parts.CACHED_PARTS + 3
    assert stored_parts.get("acme", "b1", 0, 0) == part("b1", 0)
    assert store.reads == stored_parts.CACHED_PARTS + 3


def test_a_dropped_part_is_gone_from_cache_and_store(store: CountingStore) -> None:
    put("b1", 0)
    stored_parts.drop("acme", "b1", 0, 0)
    assert stored_parts.get("acme", "b1", 0, 0) is None
    assert store == {}
