"""The aggregator's stored part pieces (`batch_parts`), read through a small cache of
decoded pieces.

A piece holds up to `ledger_pieces.PIECE_BYTES` of a part's items (about 2,900 no-op
items). The release of a big batch walks a piece in slices of half a window, and decoding
the whole piece from the store for every slice was the aggregator's largest single cost.
Pieces never change once stored, so the cache needs no invalidation beyond `drop`. It holds
few pieces. Only reads fill it: a piece is read when the release reaches it, and a burst of
arriving pieces must not push out the one being released (each arrival would then decode
it again).
"""

from __future__ import annotations

from collections import OrderedDict

from streams import ledger_pieces
from streams.keys import piece_key
from streams.ledger_pieces import Piece
from streams.tables import batch_parts

CACHED_PARTS = 1
_cache: OrderedDict[str, Piece] = OrderedDict()


def put(tenant: str, batch_id: str, number: int, piece: int, event: bytes) -> None:
    """Store a part's piece as its ledger event (call while handling that event)."""
    batch_parts[piece_key(tenant, batch_id, number, piece)] = event


def get(tenant: str, batch_id: str, number: int, piece: int) -> Piece | None:
    key = piece_key(tenant, batch_id, number, piece)
    part = _cache.get(key)
    if part is not None:
        _cache.move_to_end(key)
        return part
    raw = batch_parts.get(key)
    if raw is None:
        return None
    part = ledger_pieces.decode(raw)
    _remember(key, part)
    return part


def drop(tenant: str, batch_id: str, number: int, piece: int) -> None:
    key = piece_key(tenant, batch_id, number, piece)
    _cache.pop(key, None)
    batch_parts.pop(key, None)


def _remember(key: str, part: Piece) -> None:
    _cache[key] = part
    _cache.move_to_end(key)
    while len(_cache) > CACHED_PARTS:
        _cache.popitem(last=False)
