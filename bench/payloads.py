"""The job every side measures: no-op action items, and the real bytes they travel as."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from bench.services import TENANT
from streams import codec
from streams.aggregation import RELEASE_WINDOW
from streams.clock import iso
from streams.keys import item_topic_key
from streams.messages import item_requested, item_result, part_fields
from streams.parts import split_parts
from streams.validation import validate_submission


def new_batch_id(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4().hex[:10]}"


def noop_items(count: int) -> list[dict[str, Any]]:
    """`count` no-op action items (`batchwire/noop`, which returns `{"ok": true}`)."""
    return [{"namespace": "batchwire", "action": "noop", "params": {"i": i}} for i in range(count)]


def http_items(count: int) -> list[dict[str, Any]]:
    """`count` POSTs to the tenant's API (the local fast target answers each at once)."""
    return [{"method": "POST", "path": f"/orders/{i}", "body": {"i": i}} for i in range(count)]


#: far beyond any scenario's time limit: with the contract's default (1,800 s) the items of a
#: 1,000,000-item batch still waiting after 30 minutes ended `timed_out` without running
DEADLINE_S = 24 * 3600


def batch(
    batch_id: str,
    items: list[dict[str, Any]],
    *,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """A `BatchSubmitted` for the bench tenant (callback mode `batch` when a URL is given)."""
    body: dict[str, Any] = {
        "batch_id": batch_id,
        "tenant": TENANT,
        "items": items,
        "deadline_s": DEADLINE_S,
    }
    if callback_url:
        body["callback"] = {"url": callback_url, "mode": "batch"}
    return body


@dataclass(frozen=True)
class WireMessage:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class WireBatch:
    """One batch as the pipeline's topics carry it: submission parts (JSON, as a producer
    sends them), one `ItemRequested` per item (`items[p]`: the items of part `p`) and one
    `ItemResult` per item, each in its real encoding and with its real key."""

    batch_id: str
    parts: list[WireMessage]
    items: list[list[WireMessage]]
    results: list[WireMessage]


def wire_batch(batch_id: str, count: int) -> WireBatch:
    """Encode a no-op batch of `count` items exactly as batchwire would, hop by hop."""
    part_bodies = split_parts(batch(batch_id, noop_items(count)))
    parts = [
        WireMessage(TENANT.encode(), json.dumps(part, ensure_ascii=False).encode())
        for part in part_bodies
    ]
    items: list[list[WireMessage]] = []
    results: list[WireMessage] = []
    first_index = 0
    for part_body in part_bodies:
        sub = validate_submission(
            part_body,
            allowed_tenants=frozenset({TENANT}),
            max_items=10_000_000,
            first_index=first_index,
        )
        first_index += len(sub.items)
        part = part_fields(
            sub, deadline_at=0.0, submitted_at=iso(), prerelease_below=RELEASE_WINDOW
        )
        items.append([])
        for item in sub.items:
            req = item_requested(part, item)
            key = item_topic_key(TENANT, batch_id, item["id"], item["group"]).encode()
            items[-1].append(WireMessage(key, codec.encode("ItemRequested", req)))
            result = item_result(req, status="succeeded", output={"ok": True}, attempts=1)
            results.append(WireMessage(batch_id.encode(), codec.encode("ItemResult", result)))
    return WireBatch(batch_id, parts, items, results)
