"""Stored results in blocks (streams.stored_results; the store is a dict here, the worker's
is a table): a chunk reads each block once and writes it once, under the last event that
changed it; big results get keys of their own; lookups stop at the first missing item."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from streams import stored_results
from streams.keys import result_block_key, result_key
from streams.stored_results import (
    BLOCK_ITEMS,
    INLINE_MAX,
    ResultBlocks,
    decode_block,
    encode_block,
)


class CountingStore(dict[str, Any]):
    """A dict that counts reads and records the event each write happened under."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes: list[tuple[str, object]] = []
        self.event: object = None

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((key, self.event))
        super().__setitem__(key, value)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> CountingStore:
    store = CountingStore()
    monkeypatch.setattr(stored_results, "item_results", store)
    return store


def writer(store: CountingStore):  # type: ignore[no-untyped-def]
    @contextmanager
    def in_event(event: object) -> Iterator[None]:
        store.event = event
        try:
            yield
        finally:
            store.event = None

    return in_event


def raw(index: int, size: int = 20) -> bytes:
    return f"r{index}:".encode().ljust(size, b".")


def test_a_block_comes_back_as_it_was_stored() -> None:
    block: stored_results.Block = {7: (12, raw(7)), 3: (-1, b""), 5: (2**40, None)}
    assert decode_block(encode_block(block)) == block
    assert decode_block(b"") == {}


def test_a_chunk_reads_and_writes_each_block_once(store: CountingStore) -> None:
    blocks = ResultBlocks()
    n = 3 * BLOCK_ITEMS
    for index in range(n):
        assert blocks.offset("acme", "b1", index) is None
        blocks.put("acme", "b1", index, 100 + index // BLOCK_ITEMS, raw(index), f"e{index}")
    assert store.reads == 3 and store.writes == []
    blocks.write(writer(store))
    assert [key for key, _ in store.writes] == [result_block_key("acme", "b1", b) for b in range(3)]
    # each block is written under the last event that changed it (its changelog partition)
    assert [event for _, event in store.writes] == [
        f"e{(b + 1) * BLOCK_ITEMS - 1}" for b in range(3)
    ]
    later = ResultBlocks()
    assert [later.get("acme", "b1", i) for i in range(n)] == [raw(i) for i in range(n)]
    assert later.offset("acme", "b1", BLOCK_ITEMS) == 101
    assert later.get("acme", "b2", 0) is None and later.get("other", "b1", 0) is None
    blocks.write(writer(store))
    assert len(store.writes) == 3  # nothing changed since: nothing written again


def test_results_of_a_batch_read_in_order_up_to_the_first_missing(store: CountingStore) -> None:
    blocks = ResultBlocks()
    for index in [*range(0, 40), *range(41, 70)]:
        blocks.put("acme", "b1", index, 1, raw(index), None)
    blocks.write(writer(store))
    assert list(ResultBlocks().run_from("acme", "b1", 0, 70)) == [raw(i) for i in range(40)]
    assert list(ResultBlocks().run_from("acme", "b1", 41, 70)) == [raw(i) for i in range(41, 70)]
    assert list(ResultBlocks().run_from("acme", "b1", 41, 50)) == [raw(i) for i in range(41, 50)]
    # an unwritten chunk's own reads see its puts
    assert list(blocks.run_from("acme", "b1", 38, 42)) == [raw(38), raw(39)]


def test_a_big_result_has_a_key_of_its_own_and_drop_forgets_everything(
    store: CountingStore,
) -> None:
    big = raw(1, INLINE_MAX + 1)
    blocks = ResultBlocks()
    blocks.put("acme", "b1", 0, 5, raw(0), None)
    blocks.put("acme", "b1", 1, 6, big, None)
    blocks.put("acme", "b1", BLOCK_ITEMS, 7, raw(BLOCK_ITEMS), None)
    blocks.write(writer(store))
    block = store[result_block_key("acme", "b1", 0)]
    assert len(block) < INLINE_MAX  # the big one is not inside
    assert store[result_key("acme", "b1", 1)] == big
    assert ResultBlocks().get("acme", "b1", 1) == big
    assert ResultBlocks().offset("acme", "b1", 1) == 6
    blocks.put("other", "b1", 0, 5, raw(0), None)
    blocks.write(writer(store))
    stored_results.drop("acme", "b1", BLOCK_ITEMS + 1)
    assert list(store) == [result_block_key("other", "b1", 0)]
