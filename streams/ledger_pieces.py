"""A part's items on their way from the exploder to the aggregator: ledger pieces.

The exploder sends each part to the aggregator on the ledger, cut into pieces of at most
`PIECE_BYTES` of items; the aggregator stores them (`streams.stored_parts`) and releases
their items in windows. A piece is binary:

    MAGIC, the length (u32) and JSON text of the piece's fields (`messages.part_fields`,
    with `piece`, `pieces`, `size`: its items, and `counts`: `aggregation.piece_counts`),
    then for each item: `_ITEM` (index, stage, whether it is in a group, the lengths of
    the next two), its key on `batchwire.items`, and its `ItemRequested` fields
    `item_id` to `request` in Avro (`_ITEM_FIELDS`).

Avro writes a record as its fields one after the other, so an item's whole `ItemRequested`
is the piece's `prefix` (the single-object header, `batch_id`, `tenant`), the item's bytes
and the piece's `suffix` (`headers` to `submitted_at`): releasing an item is a concatenation
(`Piece.requested`). The part's fields are encoded once per piece rather than once per item,
and the aggregator neither decodes the item nor encodes its message.

Pieces written before (format 1) are JSON events whose `items` are JSON texts, one per
item; they are still read, converted on reading into the same form (`from_event`). They
were cut by characters of JSON rather than bytes of Avro: see the README's limits for the
one upgrade case this leaves (a part exploded again across the upgrade).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams import aggregation, codec
from streams.byte_reading import read_bytes, read_layout
from streams.keys import item_topic_key
from streams.messages import decode_event, encode_event
from streams.validation import ITEM_FIELDS

MAGIC = b"BWP2"
#: A part's items reach the aggregator in pieces of at most this many bytes of items (one
#: item more when a single item is bigger). A whole part of ~13,000 no-op items made a
#: 1.8 MB event, and the worker's peak RSS on a 1,000,000-item batch came from aiokafka
#: building produce requests around such events and their `batch_parts` changelog copies.
#: Pieces must cut the same way on every run: a part sent again after a crash is
#: deduplicated piece by piece (`aggregation.register_part`).
PIECE_BYTES = 256 * 1024

_WHAT = "a ledger piece"
_LENGTH = struct.Struct(">I")
_ITEM = struct.Struct(">qi?II")
_PREFIX_FIELDS = codec.FieldRun("ItemRequested", "batch_id", "tenant")
_ITEM_FIELDS = codec.FieldRun("ItemRequested", "item_id", "request")
_SUFFIX_FIELDS = codec.FieldRun("ItemRequested", "headers", "submitted_at")


@dataclass(frozen=True, slots=True)
class PieceItem:
    """One item of a piece, as the release needs it."""

    index: int
    stage: int
    grouped: bool
    key: bytes  # on `batchwire.items`
    body: bytes  # its `ItemRequested` fields `item_id` to `request`


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of a part: the part's fields (with the piece's) and its items."""

    fields: dict[str, Any]
    items: list[PieceItem]
    prefix: bytes = field(repr=False)
    suffix: bytes = field(repr=False)

    def requested(self, item: PieceItem) -> bytes:
        """The item's `ItemRequested` message."""
        return self.prefix + item.body + self.suffix


def make(
    fields: Mapping[str, Any], items: Sequence[Mapping[str, Any]], *, limit: int = PIECE_BYTES
) -> list[Piece]:
    """A part's pieces, from its fields (`messages.part_fields`) and its validated items
    (`validation.validate_submission`): every item in one piece, in order, each piece
    non-empty (one piece, empty, for a part without items), each at most `limit` bytes of
    items unless one item is bigger."""
    prefix, suffix = _frame(fields)
    entries = [_piece_item(fields, item) for item in items]
    bounds = _bounds([len(e.key) + len(e.body) for e in entries], limit)
    return [
        _piece(
            {**fields, "piece": number, "pieces": len(bounds)}, entries[start:end], prefix, suffix
        )
        for number, (start, end) in enumerate(bounds)
    ]


def _piece(
    fields: Mapping[str, Any], entries: list[PieceItem], prefix: bytes, suffix: bytes
) -> Piece:
    """A piece of these items, with their number (`size`) and `counts` (unless the fields
    carry them)."""
    counts = fields.get("counts") or aggregation.piece_counts(
        entries, aggregation.prerelease_below(fields)
    )
    return Piece({**fields, "size": len(entries), "counts": counts}, entries, prefix, suffix)


def encode(piece: Piece) -> bytes:
    """A piece as its ledger event."""
    head = encode_event(piece.fields)
    out = bytearray(MAGIC)
    out += _LENGTH.pack(len(head))
    out += head
    for item in piece.items:
        out += _ITEM.pack(item.index, item.stage, item.grouped, len(item.key), len(item.body))
        out += item.key
        out += item.body
    return bytes(out)


def is_piece(data: bytes) -> bool:
    """Whether a ledger event is a piece in this module's binary form."""
    return data.startswith(MAGIC)


def decode(data: bytes) -> Piece:
    """A piece from its ledger event, binary or (written before) JSON. ValueError when
    the event is cut short or is not a piece."""
    if not is_piece(data):
        return from_event(decode_event(data))
    fields, pos = _read_fields(data)
    items = []
    while pos < len(data):
        (index, stage, grouped, key_size, body_size), pos = read_layout(_ITEM, data, pos, _WHAT)
        key, pos = read_bytes(data, pos, key_size, _WHAT)
        body, pos = read_bytes(data, pos, body_size, _WHAT)
        items.append(PieceItem(index, stage, grouped, key, body))
    prefix, suffix = _frame(fields)
    return Piece(fields, items, prefix, suffix)


def decode_fields(data: bytes) -> dict[str, Any]:
    """A piece's fields, without reading its items: what registering the piece needs."""
    if not is_piece(data):
        return from_event(decode_event(data)).fields
    return _read_fields(data)[0]


def _read_fields(data: bytes) -> tuple[dict[str, Any], int]:
    """A binary piece's fields, and where its items start."""
    (size,), pos = read_layout(_LENGTH, data, len(MAGIC), _WHAT)
    fields, pos = read_bytes(data, pos, size, _WHAT)
    return decode_event(fields), pos


def _piece_item(fields: Mapping[str, Any], item: Mapping[str, Any]) -> PieceItem:
    key = item_topic_key(fields["tenant"], fields["batch_id"], item["id"], item["group"])
    body = _ITEM_FIELDS.encode(
        {
            "item_id": item["id"],
            "index": item["index"],
            "group": item["group"],
            "stage": item["stage"],
            "request": item,
        }
    )
    return PieceItem(item["index"], item["stage"], item["group"] is not None, key.encode(), body)


def _frame(fields: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The bytes of a piece's items' `ItemRequested` before and after the items' own."""
    prefix = codec.header("ItemRequested") + _PREFIX_FIELDS.encode(fields)
    return prefix, _SUFFIX_FIELDS.encode(fields)


def _bounds(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """`(start, end)` of each piece of items of these sizes (see `make`)."""
    bounds: list[tuple[int, int]] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and total + size > limit:
            bounds.append((start, index))
            start, total = index, 0
        total += size
    bounds.append((start, len(sizes)))
    return bounds


def from_event(event: dict[str, Any]) -> Piece:
    """A piece from a format 1 event: a JSON object whose `items` are each one item's JSON
    text without its null fields (or, earlier still, the item's object); a whole part when
    it has no `piece`; `counts` computed when it has none."""
    if event.get("type") != "part":
        raise ValueError("not a part's ledger event")
    fields = {name: value for name, value in event.items() if name != "items"}
    fields.setdefault("piece", 0)
    fields.setdefault("pieces", 1)
    prefix, suffix = _frame(fields)
    entries = [_piece_item(fields, _legacy_item(packed)) for packed in event["items"]]
    return _piece(fields, entries, prefix, suffix)


def _legacy_item(packed: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(packed, dict):
        return packed
    item: dict[str, Any] = dict.fromkeys(ITEM_FIELDS)
    item.update(json.loads(packed))
    return item
