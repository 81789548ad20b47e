"""The ledger event of a bundle of item results (`streams.result_bundles`), and how the
aggregator reads it.

A bundle holds results of one batch. Its event is binary (`RESULTS_MAGIC`): the tenant and
batch id (each a u16 length and UTF-8), then for each result `_RESULT` (the length of the
encoded `ItemResult`, its item's index and stage, the length of its status), its status
and the encoded `ItemResult` itself. Counting a result that succeeded needs only those
(`aggregation.count_result`), so the aggregator stores the bytes as they are and decodes
only the results that did not succeed (their errors and group matter).

Bundles written before (`LEGACY_MAGIC`: each result's length and bytes, nothing else) are
still read; their results are decoded to learn the same.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams import codec
from streams.aggregation import result_stage
from streams.byte_reading import read_bytes, read_layout
from streams.errors import CodecError

log = logging.getLogger(__name__)

#: The first bytes of a ledger event that carries item results (JSON events start with `{`,
#: ledger pieces with `ledger_pieces.MAGIC`).
RESULTS_MAGIC = b"BWR2"
LEGACY_MAGIC = b"BWR1"
_WHAT = "a results event"
_NAME = struct.Struct(">H")
_RESULT = struct.Struct(">IqiB")
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class BundledResult:
    """An encoded `ItemResult` and what counting it needs."""

    index: int
    stage: int
    status: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Bundle:
    tenant: str
    batch_id: str
    results: list[BundledResult]


def bundled(result: Mapping[str, Any], raw: bytes) -> BundledResult:
    """`result` (an `ItemResult`) encoded as `raw`, ready for a bundle."""
    return BundledResult(result["index"], result_stage(result), result["status"], raw)


def is_results_bundle(data: bytes) -> bool:
    """Whether a ledger event is a bundle of item results (`pack_results`)."""
    return data.startswith(RESULTS_MAGIC) or data.startswith(LEGACY_MAGIC)


def pack_results(tenant: str, batch_id: str, results: Sequence[BundledResult]) -> bytes:
    """Results of one batch as one ledger event (`unpack_results`).

    Every result also goes on `batchwire.results` on its own, for downstream consumers; the
    aggregator reads them from the ledger in these bundles, so it handles one event per
    bundle rather than one per item (see `streams.result_bundles`)."""
    out = bytearray(RESULTS_MAGIC)
    for name in (tenant, batch_id):
        data = name.encode()
        out += _NAME.pack(len(data))
        out += data
    for result in results:
        status = result.status.encode()
        out += _RESULT.pack(len(result.raw), result.index, result.stage, len(status))
        out += status
        out += result.raw
    return bytes(out)


def unpack_results(data: bytes) -> Bundle | None:
    """The results of a bundle's event; None for a bundle of none (or, written before, of
    none readable). ValueError when the event is cut short."""
    if data.startswith(LEGACY_MAGIC):
        return _unpack_legacy(data)
    pos = len(RESULTS_MAGIC)
    tenant, pos = _name(data, pos)
    batch_id, pos = _name(data, pos)
    results = []
    while pos < len(data):
        (size, index, stage, status_size), pos = read_layout(_RESULT, data, pos, _WHAT)
        status, pos = read_bytes(data, pos, status_size, _WHAT)
        raw, pos = read_bytes(data, pos, size, _WHAT)
        results.append(BundledResult(index, stage, status.decode(), raw))
    return Bundle(tenant, batch_id, results) if results else None


def _name(data: bytes, pos: int) -> tuple[str, int]:
    (size,), pos = read_layout(_NAME, data, pos, _WHAT)
    name, pos = read_bytes(data, pos, size, _WHAT)
    return name.decode(), pos


def _unpack_legacy(data: bytes) -> Bundle | None:
    """A bundle written before results carried their index, stage and status: each result
    decoded; one that cannot be, or of another batch than the first, is skipped."""
    raws, pos = [], len(LEGACY_MAGIC)
    while pos < len(data):
        (size,), pos = read_layout(_LENGTH, data, pos, _WHAT)
        raw, pos = read_bytes(data, pos, size, _WHAT)
        raws.append(raw)
    batch: tuple[str, str] | None = None
    results = []
    for raw in raws:
        try:
            result = codec.decode_as("ItemResult", raw, parse_json=False)
        except CodecError as exc:
            log.error("skipping an unreadable result in a results bundle: %s", exc)
            continue
        if batch is None:
            batch = (result["tenant"], result["batch_id"])
        elif (result["tenant"], result["batch_id"]) != batch:
            log.error("skipping a result of another batch in a results bundle of %s", batch)
            continue
        results.append(bundled(result, raw))
    return None if batch is None else Bundle(*batch, results)
