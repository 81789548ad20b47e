"""Builders for the messages the pipeline emits, so each shape is written in one place."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from streams.clock import iso
from streams.errors import SubmissionError
from streams.validation import ITEM_FIELDS, Submission

#: Fields of the contract's item (the Avro `Item` record) kept as the item's `request`: a
#: normalised item's, without the internal `index` and `kind`.
REQUEST_FIELDS = tuple(name for name in ITEM_FIELDS if name not in ("index", "kind"))


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_event(event: dict[str, Any]) -> bytes:
    """Internal events (ledger, controls) travel as compact JSON."""
    return _ENCODE(event).encode()


def decode_event(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("an internal event must be a JSON object")
    return value


def request_of(item: dict[str, Any]) -> dict[str, Any]:
    """The original item as the client sent it (normalised), without internal fields."""
    return {name: item.get(name) for name in REQUEST_FIELDS}


def part_fields(
    sub: Submission, deadline_at: float, submitted_at: str, prerelease_below: int
) -> dict[str, Any]:
    """The fields of a part that every one of its ledger pieces carries
    (`streams.ledger_pieces`), with the window under which the exploder sent the head of
    stage 0 (`aggregation.prereleased`)."""
    return {
        "type": "part",
        "tenant": sub.tenant,
        "batch_id": sub.batch_id,
        "part": sub.part,
        "parts": sub.parts,
        "headers": sub.headers,
        "callback": sub.callback,
        "stop_on_failure": sub.stop_on_failure,
        "deadline_at": deadline_at,
        "metadata": sub.metadata,
        "submitted_at": submitted_at,
        "prerelease_below": prerelease_below,
    }


def item_requested(part: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The `ItemRequested` of one item of a registered part."""
    return {
        "batch_id": part["batch_id"],
        "tenant": part["tenant"],
        "item_id": item["id"],
        "index": item["index"],
        "group": item["group"],
        "stage": item["stage"],
        "request": item,
        "headers": part["headers"],
        "stop_on_failure": part["stop_on_failure"],
        "deadline_at": part["deadline_at"],
        "part": part["part"],
        "submitted_at": part["submitted_at"],
    }


def item_result(
    req: dict[str, Any],
    *,
    status: str,
    code: int | None = None,
    headers: dict[str, str] | None = None,
    output: Any = None,
    errors: list[str] | None = None,
    attempts: int = 0,
    started_at: str | None = None,
) -> dict[str, Any]:
    """An `ItemResult` for the `ItemRequested` (or ledger item) `req`."""
    request = req["request"]
    return {
        "batch_id": req["batch_id"],
        "tenant": req["tenant"],
        "item_id": req["item_id"],
        "index": req["index"],
        "success": status == "succeeded",
        "status": status,
        "code": code,
        "headers": headers or {},
        "output": output,
        "errors": errors or [],
        "attempts": attempts,
        "started_at": started_at,
        "finished_at": iso(),
        "request": request_of(request),
    }


def unrun_result(req: dict[str, Any], status: str) -> dict[str, Any]:
    """The result of the `ItemRequested` `req` when its item never ran: `cancelled` or
    `timed_out`."""
    reason = {
        "cancelled": "the batch was cancelled before this item started",
        "timed_out": "the batch deadline passed before this item finished",
    }[status]
    return item_result(req, status=status, errors=[reason])


def rejection(
    error: SubmissionError, raw: bytes, *, batch_id: str | None, tenant: str | None
) -> dict[str, Any]:
    """A `SubmissionRejected` for `batchwire.rejected`."""
    return {
        "error": error.as_error(),
        "batch_id": batch_id,
        "tenant": tenant,
        "raw": raw,
        "at": iso(),
    }


def callback_id(tenant: str, batch_id: str, created_at: str, what: str) -> str:
    """A stable webhook-id (the same on every retry and replay), safe for signing: the
    Standard Webhooks id must not contain dots, which tenants and batch ids may.

    `created_at` is the batch's (when its first part was submitted): a batch id used again
    once the earlier batch is forgotten (a nightly "sync-all") gets new webhook-ids, which a
    receiver that drops a repeated id would otherwise drop."""
    digest = hashlib.sha256(f"{tenant}/{batch_id}/{created_at}/{what}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def original_input(request: dict[str, Any]) -> dict[str, Any]:
    """An item as its client gave it, for an item callback: without the fields of the other
    kind of item, which its `request` holds as nulls."""
    return {name: value for name, value in request.items() if value is not None}


def item_callback(result: dict[str, Any], url: str, created_at: str) -> dict[str, Any]:
    """`CallbackRequested` in mode `item` for a result of the batch created at `created_at`;
    its id is stable so a replay keeps its webhook-id."""
    what = f"item/{result['index']}"
    return {
        "callback_id": callback_id(result["tenant"], result["batch_id"], created_at, what),
        "batch_id": result["batch_id"],
        "tenant": result["tenant"],
        "url": url,
        "mode": "item",
        "payload": {
            "batch_id": result["batch_id"],
            "item_id": result["item_id"],
            "success": result["success"],
            "errors": result["errors"],
            "originalInput": original_input(result["request"]),
            "endpointOutput": result["output"],
        },
        "created_at": iso(),
    }


def batch_callback(
    status: dict[str, Any], url: str, results: list[dict[str, Any]] | None, results_url: str
) -> dict[str, Any]:
    """`CallbackRequested` in mode `batch`: results inline when given, else their URL.

    A rejected batch's callback carries the error, and an id of its own: a valid batch
    submitted under the same id later calls back again, and a receiver that drops a repeated
    `webhook-id` must not drop that one."""
    payload: dict[str, Any] = {
        "batch_id": status["batch_id"],
        "tenant": status["tenant"],
        "status": status["status"],
        "counters": status["counters"],
        "metadata": status["metadata"],
    }
    if status.get("error"):
        payload["error"] = status["error"]
    if results is not None:
        payload["results"] = results
    else:
        payload["results_url"] = results_url
    rejected = status["status"] == "rejected"
    return {
        "callback_id": callback_id(
            status["tenant"],
            status["batch_id"],
            status["created_at"],
            "rejected" if rejected else "batch",
        ),
        "batch_id": status["batch_id"],
        "tenant": status["tenant"],
        "url": url,
        "mode": "batch",
        "payload": payload,
        "created_at": iso(),
    }
