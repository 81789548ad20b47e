"""The aggregator's stored item results (`item_results`), in blocks of consecutive items.

One table write per result was a RocksDB put and a changelog record through faust's
producer buffer each, about a sixth of the worker's core. A big batch's results come back
roughly in submission order, so one chunk of them lands in few blocks of `BLOCK_ITEMS`:
`ResultBlocks` reads each block a chunk touches once and writes it back once, at the
chunk's end. A result bigger than `INLINE_MAX` is stored under a key of its own (the block
records that it is there), so that a block stays small: a trickle of results, one per
chunk, rewrites its block each time.

A block: per result, in index order, its index (4 bytes), the offset of the ledger bundle
that stored it (8), the length of its Avro `ItemResult` (4, or `SPILLED`) and the result.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from streams.keys import result_block_key, result_key
from streams.tables import item_results

BLOCK_ITEMS = 32
INLINE_MAX = 4096
SPILLED = 0xFFFFFFFF
_ENTRY = struct.Struct(">IqI")

#: index -> (offset of the bundle that stored it, the result; None: under its own key)
Block = dict[int, tuple[int, bytes | None]]


def encode_block(block: Block) -> bytes:
    out = bytearray()
    for index in sorted(block):
        offset, raw = block[index]
        if raw is None:
            out += _ENTRY.pack(index, offset, SPILLED)
        else:
            out += _ENTRY.pack(index, offset, len(raw)) + raw
    return bytes(out)


def decode_block(data: bytes) -> Block:
    block: Block = {}
    pos = 0
    while pos < len(data):
        index, offset, size = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        if size == SPILLED:
            block[index] = (offset, None)
        else:
            block[index] = (offset, data[pos : pos + size])
            pos += size
    return block


class ResultBlocks:
    """The blocks of results one chunk of events reads and writes; a fresh one reads the
    table as it is (the results lookup)."""

    def __init__(self) -> None:
        self._blocks: dict[str, Block] = {}
        #: block key -> the event to write it under (its changelog partition)
        self._dirty: dict[str, Any] = {}

    def _block(self, tenant: str, batch_id: str, index: int) -> tuple[str, Block]:
        key = result_block_key(tenant, batch_id, index // BLOCK_ITEMS)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = _load(key)
        return key, block

    def offset(self, tenant: str, batch_id: str, index: int) -> int | None:
        """The offset of the bundle that stored the item's result, None: no result yet."""
        entry = self._block(tenant, batch_id, index)[1].get(index)
        return None if entry is None else entry[0]

    def get(self, tenant: str, batch_id: str, index: int) -> bytes | None:
        """The item's encoded `ItemResult`, None: no result yet."""
        entry = self._block(tenant, batch_id, index)[1].get(index)
        if entry is None:
            return None
        raw = entry[1]
        return raw if raw is not None else item_results.get(result_key(tenant, batch_id, index))

    def put(
        self, tenant: str, batch_id: str, index: int, offset: int, raw: bytes, event: Any
    ) -> None:
        """Store the item's result (written to the table by `write`)."""
        key, block = self._block(tenant, batch_id, index)
        if len(raw) > INLINE_MAX:
            item_results[result_key(tenant, batch_id, index)] = raw
            block[index] = (offset, None)
        else:
            block[index] = (offset, raw)
        self._dirty[key] = event

    def run_from(self, tenant: str, batch_id: str, start: int, stop: int) -> Iterator[bytes]:
        """Stored results from index `start` on, in order, up to the first item (below
        `stop`) that has none yet."""
        for index in range(start, stop):
            raw = self.get(tenant, batch_id, index)
            if raw is None:
                return
            yield raw

    def write(self, in_event: Callable[[Any], AbstractContextManager[None]]) -> None:
        """Write back every block changed, each under the last event that changed it."""
        for key, event in self._dirty.items():
            with in_event(event):
                item_results[key] = encode_block(self._blocks[key])
        self._dirty.clear()


def drop(tenant: str, batch_id: str, posted: int) -> None:
    """Forget every stored result of a batch of `posted` items."""
    for number in range((posted + BLOCK_ITEMS - 1) // BLOCK_ITEMS):
        key = result_block_key(tenant, batch_id, number)
        for index, (_, raw) in _load(key).items():
            if raw is None:
                item_results.pop(result_key(tenant, batch_id, index), None)
        item_results.pop(key, None)


def _load(key: str) -> Block:
    stored = item_results.get(key)
    return decode_block(stored) if stored else {}
