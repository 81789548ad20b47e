"""A part's items travel packed in its ledger events (`streams.messages.pack_items`): one
JSON text per item without its null fields, unpacked to the item `validate_submission`
gave, every field included; a big part is cut into pieces (`part_pieces`)."""

from __future__ import annotations

import itertools
import json
from types import MappingProxyType
from typing import Any

from streams.messages import (
    decode_event,
    encode_event,
    pack_items,
    part_items,
    part_pieces,
    piece_bounds,
    piece_of,
    unpack_item,
)
from streams.validation import ITEM_FIELDS, validate_submission

ITEMS: list[Any] = [
    {"method": "post", "path": "/orders", "body": {"n": 1, "note": None}, "group": "g1"},
    {"id": "x", "method": "GET", "path": "/a", "headers": {"X-A": "1"}, "body": None},
    {"id": 7, "namespace": "shop", "action": "ship", "params": {"to": None}, "stage": 2},
    {"namespace": "shop", "action": "ship", "params": "text", "group": "g1", "stage": 1},
    {"method": "PUT", "path": "/b", "body": "raw text"},
    {"method": "POST", "path": "/c", "body": [None, 0, False, ""]},
    # not a dict: validated field by field (`_checked_item`), not by the fast path
    MappingProxyType({"namespace": "shop", "action": "pack", "params": {"a": 1}}),
]


def validated() -> list[dict[str, Any]]:
    sub = validate_submission(
        {"tenant": "acme", "batch_id": "b1", "items": ITEMS},
        allowed_tenants=frozenset({"acme"}),
        max_items=1000,
        first_index=40,
    )
    return sub.items


def test_unpacking_a_packed_item_gives_the_validated_item_back() -> None:
    items = validated()
    event = decode_event(encode_event({"items": pack_items(items)}))  # as the aggregator reads it
    unpacked = list(part_items(event))
    assert unpacked == items
    assert [tuple(item) for item in unpacked] == [ITEM_FIELDS] * len(items)


def test_a_packed_item_leaves_out_its_null_fields_but_not_nulls_inside_values() -> None:
    first, second, third = (json.loads(p) for p in pack_items(validated()[:3]))
    assert set(first) == {"id", "index", "kind", "method", "path", "body", "group", "stage"}
    assert first["body"] == {"n": 1, "note": None}
    assert "body" not in second and "headers" in second
    assert third["params"] == {"to": None} and "method" not in third


def test_items_of_events_written_before_packing_are_read_as_they_are() -> None:
    items = validated()
    assert list(part_items({"items": items})) == items
    assert unpack_item(items[0]) is items[0]


def test_pieces_cover_every_item_once_in_order_each_within_the_limit() -> None:
    packed = [f"item-{i}" + "x" * (i % 7) for i in range(100)]  # 6-14 characters each
    bounds = piece_bounds(packed, limit=50)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(packed)
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(bounds))
    sizes = [sum(map(len, packed[start:end])) for start, end in bounds]
    assert all(size <= 50 for size in sizes)
    # no piece could have taken the next piece's first item
    for (_, end), size in zip(bounds[:-1], sizes, strict=False):
        assert size + len(packed[end]) > 50


def test_an_item_over_the_limit_travels_alone_and_an_empty_part_in_one_piece() -> None:
    assert piece_bounds(["ab", "x" * 60, "cd", "ef"], limit=50) == [(0, 1), (1, 2), (2, 4)]
    assert piece_bounds([], limit=50) == [(0, 0)]


def test_a_part_cut_into_pieces_carries_the_part_fields_on_each() -> None:
    items = [
        {"id": f"i{n}", "namespace": "shop", "action": "ship", "params": {"pad": "p" * 4000}}
        for n in range(200)
    ]
    sub = validate_submission(
        {"tenant": "acme", "batch_id": "b1", "part": 1, "parts": 3, "items": items},
        allowed_tenants=frozenset({"acme"}),
        max_items=1000,
        first_index=500,
    )
    pieces = part_pieces(sub, 9.5, "2026-01-01T00:00:00Z", prerelease_below=2000)
    assert len(pieces) > 2
    assert [piece_of(p) for p in pieces] == [(n, len(pieces)) for n in range(len(pieces))]
    assert [item for p in pieces for item in part_items(p)] == sub.items

    def fields(piece: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in piece.items() if k not in ("items", "piece")}

    assert all(fields(p) == fields(pieces[0]) for p in pieces)
    assert (pieces[0]["part"], pieces[0]["parts"], pieces[0]["deadline_at"]) == (1, 3, 9.5)


def test_ledger_events_written_before_pieces_hold_their_whole_part() -> None:
    assert piece_of({"type": "part", "part": 3, "items": []}) == (0, 1)
