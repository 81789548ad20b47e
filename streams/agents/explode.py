"""The exploder: `batchwire.batches` -> validated parts -> one `ItemRequested` per item.

Per submission (one part of a batch):
1. decode (Avro single-object or JSON) and validate, ids against the batch's earlier parts
   too (`streams.part_ids`); a bad one goes to `batchwire.rejected` with the contract's code
   and the worker goes on;
2. idempotency on `(tenant, batch_id, part)`: the same content again starts nothing new,
   other content is `batch_conflict` (until the batch id is forgotten, `forget_at`);
3. parts are exploded in order (a part that overtakes its predecessor is held, within the
   bounds of `streams.held_parts`), so item indexes follow submission order across parts;
4. the part goes to the aggregator on the ledger, in pieces (`streams.ledger_pieces`), then
   the head of its stage 0 goes out (`aggregation.prereleased`; the aggregator releases
   the rest, in windows); the broker has acknowledged all of them before the submission is
   recorded, so a crash never records a part whose items were not all written.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from typing import Any

import faust

from streams import aggregation, codec, held_parts, intake, ledger_pieces, part_ids
from streams.app import app, settings
from streams.clock import iso
from streams.errors import SubmissionError
from streams.expiry import Expiries
from streams.keys import batch_key, split_batch_key
from streams.messages import encode_event, part_fields, rejection
from streams.options import options
from streams.parts import MAX_VALUE_BYTES
from streams.publish import RecordBatches, publish, stop_worker
from streams.tables import submissions
from streams.topics import batches, items, ledger, rejected
from streams.validation import (
    Submission,
    content_hash,
    is_batch_id,
    valid_callback,
    validate_submission,
)

log = logging.getLogger(__name__)
#: a rejection carries the raw submission cut to this size, so it fits in one message
MAX_REJECTED_RAW_BYTES = 8 * 1024 * 1024
MAX_ECHOED_CHARS = 256
_BATCH_ID_NAMESPACE = uuid.UUID("6b1d1f0e-4c2a-4b8e-9a57-1f0c2d3e4f50")
#: at most this long after the aggregator may forget a batch (see `forget_at`)
FORGET_MARGIN_S = 86400.0


def forget_at(entry: dict[str, Any]) -> float:
    """When the exploder forgets a batch id: after that, the same id is a new batch.

    The aggregator forgets a batch `--retention-days` after it ended, and it ended by its
    deadline (plus the sweep's grace and the aggregator's lag, which the margin covers):
    a record forgotten earlier would let a repeat under the id start a batch that the old
    one's state and controls then spoil."""
    retention_s = options.retention_days * 86400
    return float(entry["deadline_at"]) + retention_s + min(retention_s, FORGET_MARGIN_S)


#: the exploder's idempotency records (`submissions`), by the time they are forgotten
records = Expiries(submissions, forget_at)


def _forget_expired(partition: int) -> None:
    for key in records.expired(partition, time.time()):
        entry = submissions[key]
        if entry["next_part"] < entry["parts"]:  # it never got its last part
            part_ids.forget(*split_batch_key(key), entry["next_part"])
        del submissions[key]


@app.agent(batches, name="explode")
async def explode(stream: faust.StreamT[bytes]) -> None:
    # Acked here, once exploded: faust acks the current event when the loop is left too,
    # which would commit a submission whose explosion failed.
    stream.enable_acks = False
    async for event in stream.events():
        try:
            _forget_expired(event.message.partition)  # first: an expired id is a new batch
            await handle_submission(event.value, event.headers, event.message)
        except Exception as exc:
            # Bad input never gets here (it is rejected); a fault stops the worker rather
            # than ack a submission that was not exploded: it is redelivered after a restart.
            message = event.message
            await stop_worker(
                exc, f"exploding {message.topic}[{message.partition}]@{message.offset}"
            )
            return
        await stream.ack(event)


async def handle_submission(raw: bytes | None, headers: Any, message: Any) -> None:
    try:
        body = intake.decode_part(raw, intake.content_type(headers))
    except SubmissionError as exc:
        # the message's key stands for the tenant the body does not name (the contract
        # keys `batchwire.batches` and `batchwire.rejected` by tenant)
        await _reject(exc, raw or b"", key=message.key)
        return
    assert raw is not None  # decoded
    tenant, batch_id = body.get("tenant"), body.get("batch_id")
    if isinstance(tenant, str) and batch_id is None:
        # no client key: derive it from the message, so that a redelivery reuses it
        seed = f"{message.topic}:{message.partition}:{message.offset}"
        batch_id = str(uuid.uuid5(_BATCH_ID_NAMESPACE, seed))
        body = {**body, "batch_id": batch_id}
    if not (isinstance(tenant, str) and isinstance(batch_id, str)):
        await _explode_next(body, raw, first_index=0, entry=None)  # validation rejects it
        return
    key = batch_key(tenant, batch_id)
    entry = submissions.get(key)
    part = body.get("part") or 0
    if entry is not None and str(part) in entry["hashes"]:
        if entry["hashes"][str(part)] != content_hash(body):
            await _reject(
                SubmissionError(
                    "batch_conflict",
                    f"batch {batch_id} (tenant {tenant}) part {part} was already submitted "
                    "with other content",
                ),
                raw,
                batch_id=batch_id,
                tenant=tenant,
            )
        return  # same content again: nothing new
    expected = entry["next_part"] if entry else 0
    parts = body.get("parts") or 1
    if _is_int(part) and _is_int(parts) and expected < part < parts:
        await _hold(body, raw, tenant, batch_id, part, expected)
        return
    await _explode_next(body, raw, first_index=entry["next_index"] if entry else 0, entry=entry)
    while True:  # release parts that were waiting for this one
        entry = submissions.get(key)
        if entry is None:
            return
        waiting = held_parts.take(tenant, batch_id, entry["next_part"])
        if waiting is None:
            return
        body = codec.decode_submission(waiting)
        await _explode_next(body, waiting, first_index=entry["next_index"], entry=entry)


async def _explode_next(
    body: dict[str, Any], raw: bytes, *, first_index: int, entry: dict[str, Any] | None
) -> None:
    try:
        sub = validate_submission(
            body,
            allowed_tenants=settings.allowed_tenants,
            max_items=settings.max_items,
            first_index=first_index,
        )
    except SubmissionError as exc:
        await _refuse_part(exc, body, raw, entry)
        return
    if entry is not None and "stop_on_failure" in entry:
        # the batch's fields are its first part's (as its metadata, callback and deadline)
        sub = replace(sub, headers=entry["headers"], stop_on_failure=entry["stop_on_failure"])
    ids = part_ids.digests_of(sub)
    problem = _order_problem(sub, entry) or part_ids.problem(sub, ids)
    if problem is not None:
        await _reject(problem, raw, batch_id=sub.batch_id, tenant=sub.tenant)
        return
    now = time.time()
    deadline_at = entry["deadline_at"] if entry else now + sub.deadline_s
    submitted_at = entry["submitted_at"] if entry else iso(now)
    window = options.release_window
    fields = part_fields(sub, deadline_at, submitted_at, prerelease_below=window)
    pieces = ledger_pieces.make(fields, sub.items)
    encoded = [ledger_pieces.encode(piece) for piece in pieces]
    problem = _size_problem(pieces, encoded, first_index)
    if problem is not None:
        await _refuse_part(problem, body, raw, entry)
        return
    key = sub.batch_id.encode()
    sent = [await publish(ledger, key, piece) for piece in encoded]
    head = RecordBatches(items)
    for piece in pieces:
        for item in piece.items:
            if aggregation.prereleased(item, window):
                await head.add(item.key, piece.requested(item))
    sent += await head.send()
    await asyncio.gather(*sent)  # this part's messages only, not the whole producer
    part_ids.keep(sub, ids)  # before the record: a part recorded has its ids kept
    hashes = dict(entry["hashes"]) if entry else {}
    hashes[str(sub.part)] = content_hash(body)
    records.put(
        batch_key(sub.tenant, sub.batch_id),
        {
            "hashes": hashes,
            "next_part": sub.part + 1,
            "next_index": first_index + len(sub.items),
            "parts": sub.parts,
            "deadline_at": deadline_at,
            "submitted_at": submitted_at,
            # for the parts to come, which take them from the first part
            **(_batch_fields(sub) if sub.part + 1 < sub.parts else {}),
        },
    )


def _batch_fields(sub: Submission) -> dict[str, Any]:
    return {"headers": sub.headers, "stop_on_failure": sub.stop_on_failure}


async def _hold(
    body: dict[str, Any], raw: bytes, tenant: str, batch_id: str, part: int, expected: int
) -> None:
    """Hold a part that overtook its predecessor, unless it can never be accepted or the
    hold's bounds (`streams.held_parts`) refuse it."""
    now = time.time()
    for stale_batch, stale_part, stale_raw in held_parts.make_room(tenant, now):
        await _reject(
            SubmissionError(
                "invalid_batch_format",
                f"batch {stale_batch} (tenant {tenant}): part {stale_part} waited more than "
                f"{held_parts.HELD_TTL_S:.0f} s for its predecessors and was dropped",
                [{"path": "$.part", "message": "its predecessors never arrived"}],
            ),
            stale_raw,
            batch_id=stale_batch,
            tenant=tenant,
        )
    problem = (
        _early_problem(body)
        or held_parts.conflict(tenant, batch_id, part, body)
        or held_parts.hold_problem(tenant, batch_id, part, expected)
    )
    if problem is not None:
        await _reject(problem, raw, batch_id=batch_id, tenant=tenant)
    else:
        held_parts.hold(tenant, batch_id, part, raw, now)


def _early_problem(body: dict[str, Any]) -> SubmissionError | None:
    """The problem of a part that overtook its predecessor, unless it depends on where its
    items start in the batch (too many items, an id equal to an earlier default id)."""
    try:
        validate_submission(
            body, allowed_tenants=settings.allowed_tenants, max_items=settings.max_items
        )
    except SubmissionError as exc:
        return None if exc.code in ("too_many_items", "duplicate_item_id") else exc
    return None


async def _refuse_part(
    error: SubmissionError, body: dict[str, Any], raw: bytes, entry: dict[str, Any] | None
) -> None:
    """Reject a part that cannot be exploded; the batch's first part takes the batch with it
    (`entry`: the parts accepted before it)."""
    await _reject(error, raw, batch_id=body.get("batch_id"), tenant=body.get("tenant"))
    if entry is None and not body.get("part"):
        await _refuse_batch(body, error)


async def _refuse_batch(body: dict[str, Any], error: SubmissionError) -> None:
    """The batch's first part failed validation: tell the aggregator, so that its status
    says `rejected` and a valid `callback` of the submission is called back (a later part's
    failure leaves the batch to its deadline)."""
    tenant, batch_id = _known(body.get("tenant")), body.get("batch_id")
    if tenant is None or not is_batch_id(batch_id):
        return  # no batch a client could look up
    refusal = {
        "type": "rejected",
        "tenant": tenant,
        "batch_id": batch_id,
        "error": {"code": error.code, "message": error.message},
        "callback": valid_callback(body.get("callback")),
    }
    await publish(ledger, str(batch_id).encode(), encode_event(refusal))


def _order_problem(sub: Submission, entry: dict[str, Any] | None) -> SubmissionError | None:
    """Why a valid part cannot be the batch's next one (`entry`: the parts before it)."""
    if sub.part != (entry["next_part"] if entry else 0):
        message = f"part {sub.part} of {sub.parts} does not follow the parts already received"
        detail = {"path": "$.part", "message": "parts must be numbered 0..parts-1"}
    elif entry is not None and sub.parts != entry["parts"]:
        message = f"part {sub.part} says {sub.parts} parts, its first part said {entry['parts']}"
        detail = {"path": "$.parts", "message": "every part must give the same parts"}
    else:
        return None
    return SubmissionError(
        "invalid_batch_format", f"batch {sub.batch_id} (tenant {sub.tenant}): {message}", [detail]
    )


def _size_problem(
    pieces: list[ledger_pieces.Piece], encoded: list[bytes], first_index: int
) -> SubmissionError | None:
    """An item that cannot travel: its piece, or its `ItemRequested`, over one Kafka
    message. The edges refuse such a part before publishing it (`parts.MAX_PART_BYTES`);
    one published on the topic directly is refused here rather than fault the worker."""
    for piece, data in zip(pieces, encoded, strict=True):
        frame = len(piece.prefix) + len(piece.suffix)
        if len(data) + frame <= MAX_VALUE_BYTES:
            continue  # no item's bytes exceed its piece's: the usual case, without a scan
        over = [item for item in piece.items if frame + len(item.body) > MAX_VALUE_BYTES]
        if not over and len(data) <= MAX_VALUE_BYTES:
            continue
        if not over and piece.items:  # a piece is over its limit by its biggest item only
            over = [max(piece.items, key=lambda item: len(item.body))]
        path = f"$.items[{over[0].index - first_index}]" if over else "$"
        return SubmissionError(
            "too_many_items",
            f"{path} does not fit in one Kafka message with the batch's fields "
            f"(over {MAX_VALUE_BYTES} bytes)",
            [{"path": path, "message": "too big for one Kafka message"}],
        )
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _known(value: Any) -> str | None:
    """A tenant or batch id worth echoing on the rejection: a string of sane length."""
    return value if isinstance(value, str) and len(value) <= MAX_ECHOED_CHARS else None


async def _reject(
    error: SubmissionError,
    raw: bytes,
    *,
    batch_id: Any = None,
    tenant: Any = None,
    key: bytes | None = None,
) -> None:
    """Publish the rejection, keyed by its tenant when known, else by `key`."""
    batch_id, tenant = _known(batch_id), _known(tenant)
    raw = raw[:MAX_REJECTED_RAW_BYTES]
    log.info("rejected submission (%s): %s", error.code, error.message)
    await publish(
        rejected,
        tenant.encode() if tenant else (key or b"")[:MAX_ECHOED_CHARS],
        codec.encode("SubmissionRejected", rejection(error, raw, batch_id=batch_id, tenant=tenant)),
    )
