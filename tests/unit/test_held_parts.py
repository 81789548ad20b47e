"""The exploder's hold of parts that overtook their predecessor is bounded per batch and
per tenant, and stale parts give way (the store is a dict here; the worker's is a table)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams import held_parts, tables
from streams.held_parts import HELD_TTL_S, MAX_HELD_PER_TENANT, MAX_PARTS_AHEAD


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    store: dict[str, bytes] = {}
    monkeypatch.setattr(tables, "held_parts", store)
    return store


def code(problem: Any) -> str | None:
    return None if problem is None else problem.code


def test_a_held_part_is_taken_back_once_with_its_raw_bytes(store: dict[str, bytes]) -> None:
    held_parts.hold("acme", "b1", 2, b'{"part": 2}', now=100.0)
    assert held_parts.take("acme", "b1", 1) is None
    assert held_parts.take("acme", "b1", 2) == b'{"part": 2}'
    assert held_parts.take("acme", "b1", 2) is None
    assert store == {}


def test_a_part_too_far_ahead_of_the_next_expected_is_refused(store: dict[str, bytes]) -> None:
    assert code(held_parts.hold_problem("acme", "b1", MAX_PARTS_AHEAD + 3, 3)) is None
    problem = held_parts.hold_problem("acme", "b1", MAX_PARTS_AHEAD + 4, 3)
    assert code(problem) == "invalid_batch_format"
    assert problem is not None and problem.details[0]["path"] == "$.part"


def test_a_tenant_at_its_cap_holds_no_more_while_other_tenants_still_can(
    store: dict[str, bytes],
) -> None:
    for n in range(MAX_HELD_PER_TENANT):
        held_parts.hold("acme", f"b{n}", 1, b"x", now=0.0)
    assert code(held_parts.hold_problem("acme", "new", 1, 0)) == "too_many_active_batches"
    assert code(held_parts.hold_problem("acme", "b7", 1, 0)) is None  # a resend takes no room
    assert code(held_parts.hold_problem("globex", "new", 1, 0)) is None
    assert held_parts.make_room("acme", now=HELD_TTL_S - 1) == []  # none stale yet


def test_stale_parts_are_dropped_only_when_the_tenant_needs_the_room(
    store: dict[str, bytes],
) -> None:
    held_parts.hold("acme", "old/ish", 3, b"stale", now=0.0)
    assert held_parts.make_room("acme", now=HELD_TTL_S + 1) == []  # below the cap: kept
    for n in range(MAX_HELD_PER_TENANT - 2):
        held_parts.hold("acme", f"b{n}", 1, b"fresh", now=HELD_TTL_S)
    held_parts.hold("globex", "g", 1, b"other tenant", now=0.0)
    held_parts.hold("acme", "b-last", 1, b"fresh", now=HELD_TTL_S)
    assert held_parts.make_room("acme", now=HELD_TTL_S + 1) == [("old/ish", 3, b"stale")]
    assert code(held_parts.hold_problem("acme", "new", 1, 0)) is None
    assert len(store) == MAX_HELD_PER_TENANT  # acme's fresh parts and globex's one


def test_another_copy_of_a_held_part_conflicts_and_the_same_content_does_not(
    store: dict[str, bytes],
) -> None:
    part = {"tenant": "acme", "batch_id": "b1", "part": 2, "parts": 3, "items": [{"i": 1}]}
    held_parts.hold("acme", "b1", 2, json.dumps(part).encode(), now=0.0)
    assert held_parts.conflict("acme", "b1", 2, dict(reversed(part.items()))) is None
    other = {**part, "items": [{"i": 2}]}
    assert code(held_parts.conflict("acme", "b1", 2, other)) == "batch_conflict"
    assert held_parts.conflict("acme", "b1", 1, other) is None  # nothing held for part 1
