"""Routes of one batch: submit (with `?wait=S`), status, results, cancel."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
from faust import web

from streams import aggregation
from streams.agents.aggregate import stored_result
from streams.api.errors import ApiError
from streams.api.views import ApiView
from streams.app import app, settings
from streams.errors import SubmissionError
from streams.keys import batch_key
from streams.messages import encode_event
from streams.publish import publish
from streams.tables import batch_state, submissions
from streams.topics import batches, ledger
from streams.validation import content_hash, validate_submission

#: a part's JSON stays under Kafka's default 1 MB message size
PART_BYTES = 900_000
MAX_WAIT_S = 300.0
DEFAULT_PAGE = 100
MAX_PAGE = 1000

_client: httpx.AsyncClient | None = None


def _self_client() -> httpx.AsyncClient:
    """For routed lookups from inside a handler (the router forwards to the owner)."""
    global _client
    if _client is None:
        _client = httpx.AsyncClient(base_url=str(app.conf.canonical_url), timeout=10.0)
    return _client


def split_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Cut a batch into parts whose JSON stays under `PART_BYTES` (contract: parts)."""
    chunks: list[list[Any]] = [[]]
    size = 0
    for item in body["items"]:
        n = len(json.dumps(item, ensure_ascii=False).encode()) + 1
        if chunks[-1] and size + n > PART_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += n
    return [
        {**body, "items": chunk, "part": number, "parts": len(chunks)}
        for number, chunk in enumerate(chunks)
    ]


def urls(batch_id: str) -> dict[str, str]:
    base = str(app.conf.canonical_url).rstrip("/")
    return {
        "status_url": f"{base}/v1/batches/{batch_id}",
        "results_url": f"{base}/v1/batches/{batch_id}/results",
    }


def _local_state(tenants: frozenset[str], batch_id: str) -> dict[str, Any] | None:
    for tenant in sorted(tenants):
        state = batch_state.get(batch_key(tenant, batch_id))
        if state is not None:
            return dict(state)
    return None


async def submit(
    tenant: str, body: Any, tenants: frozenset[str], authorization: str
) -> dict[str, Any]:
    """Validate a whole batch, check idempotency, publish it in parts; the 202 answer."""
    if tenant not in tenants or tenant not in settings.allowed_tenants:
        raise ApiError("tenant_not_allowed", f"this key may not submit for tenant {tenant!r}")
    if not isinstance(body, dict):
        raise ApiError("invalid_batch_format", "the body must be a JSON object", [{"path": "$"}])
    if body.get("tenant") not in (None, tenant):
        raise ApiError(
            "invalid_batch_format",
            "the body names another tenant than the URL",
            [{"path": "$.tenant", "message": f"expected {tenant!r}"}],
        )
    if body.get("part") is not None or body.get("parts") is not None:
        raise ApiError(
            "invalid_batch_format",
            "the HTTP API splits batches into parts itself",
            [{"path": "$.part", "message": "send the whole batch"}],
        )
    body = {**body, "tenant": tenant, "batch_id": body.get("batch_id") or uuid.uuid4().hex}
    try:
        sub = validate_submission(
            body, allowed_tenants=settings.allowed_tenants, max_items=settings.max_items
        )
    except SubmissionError as exc:
        raise ApiError.of(exc) from exc
    parts = split_parts(body)
    hashes = {str(part["part"]): content_hash(part) for part in parts}
    known = await _submitted_hashes(tenant, sub.batch_id, authorization)
    if known is not None and known != hashes:
        raise ApiError(
            "batch_conflict", f"batch {sub.batch_id} was already submitted with other content"
        )
    if known is None:
        for part in parts:
            await publish(batches, tenant.encode(), json.dumps(part).encode())
    return {"batch_id": sub.batch_id, "status": "accepted", **urls(sub.batch_id)}


async def _submitted_hashes(
    tenant: str, batch_id: str, authorization: str
) -> dict[str, str] | None:
    """The part hashes the exploder recorded for this batch (asked of the worker that owns
    the tenant's partition), or None when it has none."""
    response = await _self_client().get(
        f"/internal/submissions/{tenant}/{batch_id}", headers={"Authorization": authorization}
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    hashes: dict[str, str] = response.json()["hashes"]
    return hashes


async def wait_for_end(batch_id: str, authorization: str, seconds: float) -> dict[str, Any] | None:
    """The final status with every result in submission order, or None after `seconds`."""
    client = _self_client()
    headers = {"Authorization": authorization}
    deadline = time.monotonic() + min(seconds, MAX_WAIT_S)
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/batches/{batch_id}", headers=headers)
        if response.status_code == 200 and response.json()["status"] in aggregation.FINAL_STATUSES:
            status: dict[str, Any] = response.json()
            results: list[Any] = []
            cursor: str | None = "0"
            while cursor is not None:
                page = await client.get(
                    f"/v1/batches/{batch_id}/results",
                    params={"cursor": cursor, "limit": MAX_PAGE},
                    headers=headers,
                )
                page.raise_for_status()
                results.extend(page.json()["results"])
                cursor = page.json()["next_cursor"]
            return {**status, "results": results}
        await asyncio.sleep(0.2)
    return None


def _wait_seconds(request: web.Request) -> float | None:
    raw = request.query.get("wait")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError as exc:
        raise ApiError("invalid_batch_format", f"wait must be seconds, got {raw!r}") from exc


@app.page("/v1/tenants/{tenant}/batches", name="submit")
class Submit(ApiView):
    async def post(self, request: web.Request, tenant: str) -> web.Response:
        tenants = self.tenants(request)
        authorization = request.headers["Authorization"]
        wait = _wait_seconds(request)
        accepted = await submit(tenant, await self.read_json(request), tenants, authorization)
        if wait is not None:
            done = await wait_for_end(accepted["batch_id"], authorization, wait)
            if done is not None:
                return self.json({**done, **urls(accepted["batch_id"])}, status=200)
        return self.json(accepted, status=202)


@app.page("/internal/submissions/{tenant}/{batch_id}", name="submitted")
class Submitted(ApiView):
    """The exploder's idempotency record of a batch (for `submit`, on any worker)."""

    @app.table_route(table=submissions, match_info="tenant")  # type: ignore[arg-type]
    async def get(self, request: web.Request, tenant: str, batch_id: str) -> web.Response:
        if tenant not in self.tenants(request):
            raise ApiError("not_found", "no such batch")
        entry = submissions.get(batch_key(tenant, batch_id))
        if entry is None:
            raise ApiError("not_found", "no such batch")
        return self.json({"hashes": entry["hashes"]})


@app.page("/v1/batches/{batch_id}", name="status")
class Status(ApiView):
    @app.table_route(table=batch_state, match_info="batch_id")  # type: ignore[arg-type]
    async def get(self, request: web.Request, batch_id: str) -> web.Response:
        state = _local_state(self.tenants(request), batch_id)
        if state is None:
            raise ApiError("not_found", f"no batch {batch_id!r} for this key")
        return self.json({**aggregation.status_record(state), **urls(batch_id)})


@app.page("/v1/batches/{batch_id}/results", name="results")
class Results(ApiView):
    @app.table_route(table=batch_state, match_info="batch_id")  # type: ignore[arg-type]
    async def get(self, request: web.Request, batch_id: str) -> web.Response:
        state = _local_state(self.tenants(request), batch_id)
        if state is None:
            raise ApiError("not_found", f"no batch {batch_id!r} for this key")
        cursor, limit = _page(request)
        wanted = request.query.get("status")
        page: list[dict[str, Any]] = []
        index = cursor
        while index < state["posted"] and len(page) < limit:
            result = stored_result(state["tenant"], batch_id, index)
            if result is None:
                break  # not finished yet: the next page starts here
            if wanted is None or result["status"] == wanted:
                page.append(result)
            index += 1
        done = aggregation.is_complete(state) and index >= state["posted"]
        return self.json({"results": page, "next_cursor": None if done else str(index)})


def _page(request: web.Request) -> tuple[int, int]:
    try:
        cursor = int(request.query.get("cursor") or 0)
        limit = int(request.query.get("limit") or DEFAULT_PAGE)
    except ValueError as exc:
        raise ApiError("invalid_batch_format", "cursor and limit must be integers") from exc
    if cursor < 0 or not 1 <= limit <= MAX_PAGE:
        raise ApiError("invalid_batch_format", f"cursor >= 0 and 1 <= limit <= {MAX_PAGE}")
    return cursor, limit


@app.page("/v1/batches/{batch_id}/cancel", name="cancel")
class Cancel(ApiView):
    @app.table_route(table=batch_state, match_info="batch_id")  # type: ignore[arg-type]
    async def post(self, request: web.Request, batch_id: str) -> web.Response:
        state = _local_state(self.tenants(request), batch_id)
        if state is None:
            raise ApiError("not_found", f"no batch {batch_id!r} for this key")
        event = {"type": "cancel", "tenant": state["tenant"], "batch_id": batch_id}
        await publish(ledger, batch_id.encode(), encode_event(event))
        return self.json({**aggregation.status_record(state), **urls(batch_id)}, status=202)
