"""Parts that overtook their predecessor, held by the exploder until it arrives.

A producer that sends a batch's parts in order on one key never needs this; a part only
overtakes another when parts are sent from several producers or retried. Holding is
bounded, so that an allowed tenant cannot fill the store with parts whose predecessors
never come:
- a part is held only up to `MAX_PARTS_AHEAD` parts after the next expected one;
- a tenant holds at most `MAX_HELD_PER_TENANT` parts at once;
- a part held longer than `HELD_TTL_S` is dropped (and rejected) when the tenant is at
  its cap and another part needs the room.

Each held value is the hold time (8-byte big-endian float) followed by the raw message.
Entries are written while handling a submission of the tenant, so they live in the
changelog partition of the tenant's submissions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from streams import codec, tables
from streams.errors import SubmissionError
from streams.keys import SEP, part_key
from streams.validation import content_hash

MAX_PARTS_AHEAD = 16
MAX_HELD_PER_TENANT = 64
#: the contract's default batch deadline: a part waiting longer has no batch to join
HELD_TTL_S = 1800.0
_STAMP = struct.Struct(">d")


def hold(tenant: str, batch_id: str, part: int, raw: bytes, now: float) -> None:
    tables.held_parts[part_key(tenant, batch_id, part)] = _STAMP.pack(now) + raw


def take(tenant: str, batch_id: str, part: int) -> bytes | None:
    """The raw message of a held part, removed from the store; None when not held."""
    key = part_key(tenant, batch_id, part)
    value: bytes | None = tables.held_parts.get(key)
    if value is None:
        return None
    del tables.held_parts[key]
    return value[_STAMP.size :]


def hold_problem(tenant: str, batch_id: str, part: int, expected: int) -> SubmissionError | None:
    """Why `part` cannot be held while `expected` is the batch's next part, if it cannot.
    Call `make_room` first, so that stale parts do not count against the tenant."""
    if part - expected > MAX_PARTS_AHEAD:
        return SubmissionError(
            "invalid_batch_format",
            f"batch {batch_id} (tenant {tenant}): part {part} is more than "
            f"{MAX_PARTS_AHEAD} parts ahead of part {expected}, the next expected; "
            "send parts in order",
            [{"path": "$.part", "message": f"at most {expected + MAX_PARTS_AHEAD}"}],
        )
    held_already = part_key(tenant, batch_id, part) in tables.held_parts  # a resend
    if not held_already and _count(tenant) >= MAX_HELD_PER_TENANT:
        return SubmissionError(
            "too_many_active_batches",
            f"tenant {tenant} already has {MAX_HELD_PER_TENANT} parts waiting for their "
            f"predecessors; part {part} of batch {batch_id} was not held",
            [{"path": "$.part", "message": "send each batch's parts in order"}],
        )
    return None


def conflict(tenant: str, batch_id: str, part: int, body: dict[str, Any]) -> SubmissionError | None:
    """`batch_conflict` when a copy of `part` with other content is held already: the copy
    held first stays, as a part received first does."""
    value: bytes | None = tables.held_parts.get(part_key(tenant, batch_id, part))
    if value is None or content_hash(codec.decode_submission(value[_STAMP.size :])) == (
        content_hash(body)
    ):
        return None
    return SubmissionError(
        "batch_conflict",
        f"batch {batch_id} (tenant {tenant}) part {part} is already waiting for its "
        "predecessors with other content",
    )


def make_room(tenant: str, now: float) -> list[tuple[str, int, bytes]]:
    """When the tenant is at its cap, drop its parts held longer than `HELD_TTL_S`:
    `(batch_id, part, raw)` each. (Below the cap, stale parts cost nothing worth a read.)"""
    if _count(tenant) < MAX_HELD_PER_TENANT:
        return []
    dropped = []
    for key in list(_tenant_keys(tenant)):
        value: bytes | None = tables.held_parts.get(key)
        if value is None or now - _STAMP.unpack_from(value)[0] < HELD_TTL_S:
            continue
        del tables.held_parts[key]
        batch_id, _, part = key[len(tenant) + 1 :].rpartition(SEP)
        dropped.append((batch_id, int(part), value[_STAMP.size :]))
    return dropped


def _count(tenant: str) -> int:
    return sum(1 for _ in _tenant_keys(tenant))


def _tenant_keys(tenant: str) -> Iterator[str]:
    prefix = f"{tenant}{SEP}"
    return (key for key in tables.held_parts if key.startswith(prefix))
