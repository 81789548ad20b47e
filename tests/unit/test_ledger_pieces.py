"""A part's items travel to the aggregator in ledger pieces (`streams.ledger_pieces`): each
item's key and its own `ItemRequested` fields, so that its message is the piece's prefix,
its bytes and the piece's suffix; pieces written before, as JSON, still read the same."""

from __future__ import annotations

import itertools
import json
from types import MappingProxyType
from typing import Any

import pytest

from streams import aggregation, codec, ledger_pieces
from streams.keys import item_topic_key
from streams.messages import encode_event, item_requested, part_fields
from streams.validation import Submission, validate_submission

ITEMS: list[Any] = [
    {"method": "post", "path": "/orders", "body": {"n": 1, "note": None}, "group": "g1"},
    {"id": "x", "method": "GET", "path": "/a", "headers": {"X-A": "1"}, "body": None},
    {"id": 7, "namespace": "shop", "action": "ship", "params": {"to": None}, "stage": 2},
    {"namespace": "shop", "action": "ship", "params": "text", "group": "g1", "stage": 1},
    {"method": "PUT", "path": "/b", "body": "raw text ünïcode"},
    {"method": "POST", "path": "/c", "body": [None, 0, False, ""]},
    # not a dict: validated field by field (`_checked_item`), not by the fast path
    MappingProxyType({"namespace": "shop", "action": "pack", "params": {"a": 1}}),
]


def submission(items: list[Any] = ITEMS, **extra: Any) -> Submission:
    return validate_submission(
        {"tenant": "acme", "batch_id": "b1", "items": items, "headers": {"X-B": "2"}, **extra},
        allowed_tenants=frozenset({"acme"}),
        max_items=1000,
        first_index=40,
    )


def fields_of(sub: Submission, below: int = 2000) -> dict[str, Any]:
    return part_fields(sub, 9.5, "2026-01-01T00:00:00Z", prerelease_below=below)


def test_an_items_message_from_its_piece_is_what_encoding_it_whole_gives() -> None:
    sub = submission()
    fields = fields_of(sub)
    (piece,) = ledger_pieces.make(fields, sub.items)
    assert len(piece.items) == len(sub.items)
    for entry, item in zip(piece.items, sub.items, strict=True):
        assert piece.requested(entry) == codec.encode("ItemRequested", item_requested(fields, item))
        key = item_topic_key("acme", "b1", item["id"], item["group"])
        assert entry.key == key.encode()
        assert (entry.index, entry.stage, entry.grouped) == (
            item["index"],
            item["stage"],
            item["group"] is not None,
        )


def test_a_piece_reads_back_from_its_ledger_event_as_it_was_made() -> None:
    sub = submission()
    (piece,) = ledger_pieces.make(fields_of(sub, below=42), sub.items)
    event = ledger_pieces.encode(piece)
    assert ledger_pieces.is_piece(event)
    assert ledger_pieces.decode(event) == piece
    assert ledger_pieces.decode_fields(event) == piece.fields
    assert piece.fields["size"] == len(sub.items)
    assert piece.fields["counts"] == aggregation.piece_counts(piece.items, 42)


def test_a_piece_cut_short_is_refused() -> None:
    sub = submission()
    event = ledger_pieces.encode(ledger_pieces.make(fields_of(sub), sub.items)[0])
    for end in (3, 6, len(event) - 1, len(event) - 30):
        with pytest.raises(ValueError):
            ledger_pieces.decode(event[:end])


def test_pieces_cover_every_item_once_in_order_each_within_the_limit() -> None:
    items = [
        {"id": f"i{n}", "namespace": "shop", "action": "ship", "params": {"pad": "p" * (n % 9)}}
        for n in range(300)
    ]
    sub = submission(items, part=1, parts=3)
    limit = 2000
    pieces = ledger_pieces.make(fields_of(sub), sub.items, limit=limit)
    assert len(pieces) > 2
    assert [(p.fields["piece"], p.fields["pieces"]) for p in pieces] == [
        (n, len(pieces)) for n in range(len(pieces))
    ]
    entries = [entry for p in pieces for entry in p.items]
    assert [entry.index for entry in entries] == [item["index"] for item in sub.items]

    def size(entries: list[ledger_pieces.PieceItem]) -> int:
        return sum(len(e.key) + len(e.body) for e in entries)

    assert all(size(p.items) <= limit for p in pieces)
    for piece, after in itertools.pairwise(pieces):  # none could have taken the next item
        assert size(piece.items) + size(after.items[:1]) > limit

    def shared(piece: ledger_pieces.Piece) -> dict[str, Any]:
        return {k: v for k, v in piece.fields.items() if k not in ("piece", "size", "counts")}

    assert all(shared(p) == shared(pieces[0]) for p in pieces)
    assert (pieces[0].fields["part"], pieces[0].fields["parts"]) == (1, 3)


def test_an_item_over_the_limit_travels_alone_and_an_empty_part_in_one_piece() -> None:
    items = [{"namespace": "s", "action": "a", "params": {"pad": "p" * n}} for n in (1, 90, 1, 1)]
    sub = submission(items)
    pieces = ledger_pieces.make(fields_of(sub), sub.items, limit=100)
    assert [p.fields["size"] for p in pieces] == [1, 1, 2]
    (empty,) = ledger_pieces.make(fields_of(sub), [])
    assert (empty.items, empty.fields["size"], empty.fields["pieces"]) == ([], 0, 1)


def legacy_event(sub: Submission, items: list[Any], **fields: Any) -> dict[str, Any]:
    return {**fields_of(sub), "items": items, **fields}


def test_pieces_written_as_json_before_read_as_the_same_piece() -> None:
    sub = submission()
    (made,) = ledger_pieces.make(fields_of(sub), sub.items)
    texts = [json.dumps({k: v for k, v in item.items() if v is not None}) for item in sub.items]
    counts = aggregation.piece_counts(made.items, 2000)
    packed = legacy_event(sub, texts, piece=0, pieces=1, counts=counts)
    whole = legacy_event(sub, sub.items)  # before parts were cut, items packed, counted
    for event in (packed, whole):
        assert ledger_pieces.decode(encode_event(event)) == made
        assert ledger_pieces.decode_fields(encode_event(event)) == made.fields


def test_a_ledger_event_of_another_kind_is_not_a_piece() -> None:
    with pytest.raises(ValueError):
        ledger_pieces.decode(encode_event({"type": "cancel", "batch_id": "b1"}))
