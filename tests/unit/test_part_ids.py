"""Item ids repeated across a batch's parts are found, and the exploder's store of ids is
emptied by the last part or when the batch is forgotten (a dict here; the worker's is a
table)."""

from __future__ import annotations

from typing import Any

import pytest

from streams import part_ids, tables
from streams.validation import validate_submission


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    store: dict[str, bytes] = {}
    monkeypatch.setattr(tables, "part_ids", store)
    return store


def part(number: int, parts: int, ids: list[str | None], first_index: int = 0) -> Any:
    items = [
        {"namespace": "batchwire", "action": "noop", "params": {}}
        | ({} if item_id is None else {"id": item_id})
        for item_id in ids
    ]
    body = {"batch_id": "b1", "tenant": "acme", "part": number, "parts": parts, "items": items}
    return validate_submission(
        body, allowed_tenants=frozenset({"acme"}), max_items=10**6, first_index=first_index
    )


def keep(sub: Any) -> None:
    part_ids.keep(sub, part_ids.digests_of(sub))


def problem_of(sub: Any) -> Any:
    return part_ids.problem(sub, part_ids.digests_of(sub))


def test_repeated_finds_exactly_the_shared_ids() -> None:
    stored = part_ids.digests([f"id-{n}" for n in range(1000)])
    new = part_ids.digests(["x", "id-999", "y", "id-0", "\ud800"])  # a lone surrogate too
    assert part_ids.repeated(new, stored) == [1, 3]
    assert part_ids.repeated(part_ids.digests(["x", "y"]), stored) == []


def test_a_first_word_alike_is_not_a_repeat_without_the_second() -> None:
    stored = part_ids.digests(["a"])
    new = part_ids.digests(["b"])
    new[0] = stored[0]  # the same first 64 bits, another id
    assert part_ids.repeated(new, stored) == []


def test_an_id_of_an_earlier_part_is_a_duplicate_default_ids_included(
    store: dict[str, bytes],
) -> None:
    first = part(0, 3, [None, "a", None])  # default ids "0" and "2"
    assert problem_of(first) is None
    keep(first)
    second = part(1, 3, ["b", "c"], first_index=3)
    assert problem_of(second) is None
    keep(second)
    third = part(2, 3, ["d", "2", "c", "a"], first_index=5)
    problem = problem_of(third)
    assert problem is not None and problem.code == "duplicate_item_id"
    assert problem.details == [
        {"path": "$.items[1].id", "message": "also used in part 0"},
        {"path": "$.items[2].id", "message": "also used in part 1"},
        {"path": "$.items[3].id", "message": "also used in part 0"},
    ]
    assert "'2' is also used in part 0 (3 ids of this part in all)" in problem.message


def test_the_last_part_forgets_every_id_and_a_one_part_batch_keeps_none(
    store: dict[str, bytes],
) -> None:
    keep(part(0, 1, ["a"]))
    assert store == {}
    keep(part(0, 3, ["a"]))
    keep(part(1, 3, ["b"], first_index=1))
    assert len(store) == 2
    keep(part(2, 3, ["c"], first_index=2))
    assert store == {}


def test_a_big_part_is_stored_in_chunks_and_checked_in_each(
    store: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(part_ids, "CHUNK_IDS", 4)
    keep(part(0, 2, [f"i{n}" for n in range(10)]))
    assert sorted(store) == [f"acme/b1/000000/{n:04d}" for n in range(3)]
    assert {len(value) for value in store.values()} == {4 * 16, 2 * 16}
    problem = problem_of(part(1, 2, ["i9", "new", "i0"], first_index=10))
    assert problem is not None
    assert [d["path"] for d in problem.details] == ["$.items[0].id", "$.items[2].id"]


def test_a_part_stored_again_with_fewer_ids_leaves_no_chunk_behind(
    store: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(part_ids, "CHUNK_IDS", 2)
    keep(part(0, 2, ["a", "b", "c", "d", "e"]))
    keep(part(0, 2, ["a", "b"]))  # other content after a crash before its record
    assert sorted(store) == ["acme/b1/000000/0000"]
    assert problem_of(part(1, 2, ["e"], first_index=2)) is None


def test_forget_deletes_every_part_below_the_next(store: dict[str, bytes]) -> None:
    keep(part(0, 4, ["a"]))
    keep(part(1, 4, ["b"], first_index=1))
    part_ids.forget("acme", "b1", 2)
    assert store == {}
