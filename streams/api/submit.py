"""Submitting a batch over HTTP: validate the whole batch, check idempotency and limits,
publish it in parts; and waiting for its end.  Shared by every submit route."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from streams import aggregation, registrations
from streams.api.errors import RETRY_AFTER_S, ApiError
from streams.api.kafka_sends import send_all, unavailable
from streams.api.views import owned_here, unsettled
from streams.app import app, settings
from streams.batch_urls import batch_urls
from streams.errors import SubmissionError
from streams.messages import encode_event
from streams.parts import encode_parts
from streams.registrations import KNOWN_WITHIN_S
from streams.tables import batch_state
from streams.topics import batches, ledger
from streams.validation import content_hash, validate_submission

MAX_WAIT_S = 300.0

log = logging.getLogger(__name__)
MAX_PAGE = 1000
#: Results a `?wait` answer holds at most (a 1,000,000-item batch would be built whole in
#: the worker's memory); its `next_cursor` continues on `results_url`.
WAIT_MAX_RESULTS = 10 * MAX_PAGE

_client: httpx.AsyncClient | None = None


def _self_client() -> httpx.AsyncClient:
    """For routed lookups from inside a handler (the router forwards to the owner)."""
    global _client
    if _client is None:
        _client = httpx.AsyncClient(base_url=str(app.conf.canonical_url), timeout=10.0)
    return _client


def check_tenant(tenant: str, tenants: frozenset[str]) -> None:
    """The key must hold the tenant, and the tenant must be allowed to use batching."""
    if tenant not in tenants or tenant not in settings.allowed_tenants:
        raise ApiError("tenant_not_allowed", f"this key may not submit for tenant {tenant!r}")


async def submit(
    tenant: str, body: Any, tenants: frozenset[str], authorization: str
) -> dict[str, Any]:
    """Validate a whole batch, check idempotency, publish it in parts; the 202 answer."""
    check_tenant(tenant, tenants)
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
    batch_id = body.get("batch_id")
    body = {
        **body,
        "tenant": tenant,
        "batch_id": uuid.uuid4().hex if batch_id is None else batch_id,
    }
    try:
        sub = validate_submission(
            body, allowed_tenants=settings.allowed_tenants, max_items=settings.max_items
        )
        parts = encode_parts(body)
    except SubmissionError as exc:
        raise ApiError.of(exc) from exc
    hashes = {str(part["part"]): content_hash(part) for part, _ in parts}
    encoded = (raw for _, raw in parts)
    return await publish_new(tenant, sub.batch_id, hashes, encoded, authorization)


async def publish_new(
    tenant: str,
    batch_id: str,
    hashes: dict[str, str],
    parts: Iterable[bytes],
    authorization: str,
) -> dict[str, Any]:
    """Publish a validated batch's parts unless the same batch was submitted before (409 when
    it was, with other content); the 202 answer."""
    known = await _submitted_hashes(tenant, batch_id, authorization)
    if known is not None and any(hashes.get(part) != known[part] for part in known):
        raise ApiError(
            "batch_conflict", f"batch {batch_id} was already submitted with other content"
        )
    if known is None:
        await _check_active_limit(tenant, authorization)
    # Accepted only once Kafka has every part; else 503, and the same batch_id again is safe
    # (the exploder skips a part it recorded before with the same content).
    what = f"batch {batch_id}: submit it again with this batch_id"
    details = [{"batch_id": batch_id}]
    if known != hashes:
        # New, or some of its parts not recorded yet (they may still be on their way, or the
        # first submit may have died half-way): publish every part.
        await send_all(batches, tenant.encode(), parts, what, details)
    if known is None:
        # The aggregator knows the batch as `accepted` at once, rather than once the
        # exploder's first part reaches it (status and cancel would answer 404 until then,
        # longer behind a backlog on batchwire.batches).
        accepted = encode_event({"type": "accepted", "tenant": tenant, "batch_id": batch_id})
        await send_all(ledger, batch_id.encode(), [accepted], what, details)
        await _until_known(tenant, batch_id, authorization)
    current = "accepted" if known is None else await _status_of(tenant, batch_id, authorization)
    return {"batch_id": batch_id, "status": current, **batch_urls(tenant, batch_id)}


async def _until_known(tenant: str, batch_id: str, authorization: str) -> None:
    """Wait until the aggregator knows the new batch (`streams.registrations`), so that the
    202's `status_url` answers at once: here when this worker owns the batch's partition
    (a request to itself took ~10 ms of a busy event loop), else on its owner. A worker
    taking partitions over ends the wait: the status answers 503 meanwhile."""
    if owned_here(batch_state, batch_id):
        if unsettled() is None:
            await registrations.batch_known(tenant, batch_id, KNOWN_WITHIN_S)
        return
    within = {"tenant": tenant, "within": str(KNOWN_WITHIN_S)}
    with contextlib.suppress(ApiError):
        await _ask(f"/internal/known/{batch_id}", authorization, within)


async def _status_of(tenant: str, batch_id: str, authorization: str) -> str:
    """The status of a batch submitted before (a repeat's 202 says where it is), or
    `accepted` while the aggregator has not heard of it."""
    response = await _ask(f"/v1/batches/{batch_id}", authorization, {"tenant": tenant})
    if response is None:
        return "accepted"
    current: str = response.json()["status"]
    return current


async def _check_active_limit(tenant: str, authorization: str) -> None:
    """429 when the tenant already runs `BATCHWIRE_MAX_ACTIVE_BATCHES` batches (counted on
    every worker, since batches spread over all partitions)."""
    limit = settings.max_active_batches
    if limit <= 0:
        return
    answers = await each_worker(f"/internal/active/{tenant}", authorization)
    running = sum(int(answer["active"]) for answer in answers)
    if running >= limit:
        raise ApiError(
            "too_many_active_batches",
            f"tenant {tenant} already runs {running} batches (the limit is {limit})",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


async def each_worker(path: str, authorization: str) -> list[Any]:
    """GET `path` from every worker of the group (each answers for its own partitions)."""
    hosts = set(app.router.table_metadata("batch-state")) or {str(app.conf.canonical_url)}
    answers = []
    for host in sorted(hosts):
        answer = await _ask(f"{host.rstrip('/')}{path}", authorization)
        if answer is None:
            raise unavailable(f"a worker did not know {path} (a rebalance?): try again")
        answers.append(answer.json())
    return answers


async def _ask(
    url: str, authorization: str, params: dict[str, str] | None = None
) -> httpx.Response | None:
    """GET one of the API's own URLs from inside a handler (the router forwards a routed
    one to its owner); None for a 404, 503 `unavailable` when no worker answers it."""
    try:
        response = await _self_client().get(
            url, params=params, headers={"Authorization": authorization}
        )
        if response.status_code == 404:
            return None
        return response.raise_for_status()
    except httpx.HTTPError as exc:
        raise unavailable(f"a worker this answer needs did not answer ({exc!r})") from exc


async def _submitted_hashes(
    tenant: str, batch_id: str, authorization: str
) -> dict[str, str] | None:
    """The part hashes the exploder recorded for this batch (asked of the worker that owns
    the tenant's partition), or None when it has none."""
    response = await _ask(f"/internal/submissions/{tenant}/{batch_id}", authorization)
    if response is None:
        return None
    hashes: dict[str, str] = response.json()["hashes"]
    return hashes


async def wait_for_end(
    tenant: str, batch_id: str, authorization: str, seconds: float
) -> dict[str, Any] | None:
    """The final status with its first `WAIT_MAX_RESULTS` results in submission order and
    the `next_cursor` of the rest (null when they are all there), or None after `seconds`
    or when a lookup fails (a rebalance, a worker that does not answer): the batch is
    published by then, so the caller answers 202 with its URLs rather than an error that
    would make the client submit it again."""
    try:
        return await _wait_for_end(tenant, batch_id, authorization, seconds)
    except httpx.HTTPError as exc:
        log.warning("waiting for batch %s of %s: %s; answering 202", batch_id, tenant, exc)
        return None


async def _wait_for_end(
    tenant: str, batch_id: str, authorization: str, seconds: float
) -> dict[str, Any] | None:
    client = _self_client()
    headers = {"Authorization": authorization}
    tenant_only = {"tenant": tenant}
    deadline = time.monotonic() + min(seconds, MAX_WAIT_S)
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/batches/{batch_id}", params=tenant_only, headers=headers)
        status: dict[str, Any] = response.json() if response.status_code == 200 else {}
        if status.get("status") in aggregation.FINAL_STATUSES:
            results: list[Any] = []
            cursor: str | None = "0"
            while cursor is not None and len(results) < WAIT_MAX_RESULTS:
                if time.monotonic() >= deadline:
                    break  # the batch has ended: the rest is for results_url
                response = await client.get(
                    f"/v1/batches/{batch_id}/results",
                    params={
                        **tenant_only,
                        "cursor": cursor,
                        "limit": min(MAX_PAGE, WAIT_MAX_RESULTS - len(results)),
                    },
                    headers=headers,
                )
                response.raise_for_status()
                page = response.json()
                results.extend(page["results"])
                if not page["results"]:  # a part that came after the end, still running
                    await asyncio.sleep(0.2)
                cursor = page["next_cursor"]
            return {**status, "results": results, "next_cursor": cursor}
        await asyncio.sleep(0.2)
    return None
