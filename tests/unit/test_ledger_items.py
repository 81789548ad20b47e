"""A part's items travel packed in its ledger event (`streams.messages.pack_items`): one
JSON text per item without its null fields, unpacked to the item `validate_submission`
gave, every field included."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from streams.messages import decode_event, encode_event, pack_items, part_items, unpack_item
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
