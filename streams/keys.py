"""Kafka keys and table keys, in one place.

A batch is identified by `(tenant, batch_id)`: two tenants may use the same client-chosen
`batch_id` without seeing each other.  Topics keyed by `batch_id` (results, ledger) put all
of one batch's events on one partition, co-partitioned with the aggregator's tables.
"""

from __future__ import annotations

SEP = "/"


def batch_key(tenant: str, batch_id: str) -> str:
    return f"{tenant}{SEP}{batch_id}"


def split_batch_key(key: str) -> tuple[str, str]:
    tenant, _, batch_id = key.partition(SEP)
    return tenant, batch_id


def item_topic_key(tenant: str, batch_id: str, item_id: str, group: str | None) -> str:
    """`tenant/group`, or `tenant/batch_id/item_id` for an item with no group (contract)."""
    if group is None:
        return f"{tenant}{SEP}{batch_id}{SEP}{item_id}"
    return f"{tenant}{SEP}{group}"


def result_key(tenant: str, batch_id: str, index: int) -> str:
    """Zero-padded so that keys of one batch sort in submission order."""
    return f"{tenant}{SEP}{batch_id}{SEP}{index:015d}"


def result_block_key(tenant: str, batch_id: str, block: int) -> str:
    """A block of results (`streams.stored_results`); `b` keeps it apart from `result_key`."""
    return f"{tenant}{SEP}{batch_id}{SEP}b{block:012d}"


def part_key(tenant: str, batch_id: str, part: int) -> str:
    return f"{tenant}{SEP}{batch_id}{SEP}{part:06d}"


def piece_key(tenant: str, batch_id: str, part: int, piece: int) -> str:
    """A part's first piece is stored under the part's key, where whole parts were stored
    before they were cut into pieces (`ledger_pieces.make`), so those still read."""
    key = part_key(tenant, batch_id, part)
    return key if piece == 0 else f"{key}{SEP}{piece:04d}"
