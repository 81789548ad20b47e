"""Reading the ledger's binary events (`streams.ledger_pieces`, `streams.bundled_results`):
fixed layouts and length-prefixed bytes at a position, each checked against the end of the
event, so that an event cut short is a ValueError and never a short value."""

from __future__ import annotations

import struct
from typing import Any


def read_layout(
    layout: struct.Struct, data: bytes, pos: int, what: str
) -> tuple[tuple[Any, ...], int]:
    """`layout`'s values at `pos` in `data` (`what` it is, for the error), and the position
    after them."""
    end = pos + layout.size
    if end > len(data):
        raise ValueError(f"{what} is cut short (byte {len(data)} of {end})")
    return layout.unpack_from(data, pos), end


def read_bytes(data: bytes, pos: int, size: int, what: str) -> tuple[bytes, int]:
    """`size` bytes at `pos` in `data`, and the position after them."""
    end = pos + size
    if end > len(data):
        raise ValueError(f"{what} is cut short (byte {len(data)} of {end})")
    return data[pos:end], end
