"""Routes of one batch: submit (with `?wait=S`), status, results, cancel."""

from __future__ import annotations

import time
from typing import Any

from faust import web

from streams import aggregation, codec, registrations
from streams.agents.explode import forget_at
from streams.api.errors import ApiError
from streams.api.kafka_sends import send_all
from streams.api.ndjson import body_lines, submit_ndjson
from streams.api.submit import MAX_PAGE, check_tenant, submit, wait_for_end
from streams.api.views import ApiView, absent, check_settled, routed
from streams.app import app
from streams.batch_urls import batch_urls
from streams.keys import batch_key
from streams.messages import encode_event
from streams.registrations import KNOWN_WITHIN_S
from streams.stored_results import ResultBlocks
from streams.tables import active_batches, batch_state, submissions
from streams.topics import ledger

DEFAULT_PAGE = 100
#: Results read for one page at most: a `?status=` page of a big batch with few matches
#: stops there (fewer results, and the cursor where it stopped) instead of holding the
#: worker's event loop for seconds.
MAX_SCANNED = 10 * MAX_PAGE


def _wait_seconds(request: web.Request) -> float | None:
    raw = request.query.get("wait")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError as exc:
        raise ApiError("invalid_batch_format", f"wait must be seconds, got {raw!r}") from exc


class BatchView(ApiView):
    def state_or_404(self, request: web.Request, batch_id: str) -> dict[str, Any]:
        """The batch's state on this worker, among the key's tenants; else 404 (503 while
        the worker is taking partitions over)."""
        check_settled()
        for tenant in sorted(self.lookup_tenants(request)):
            state = batch_state.get(batch_key(tenant, batch_id))
            if state is not None:
                return dict(state)
        raise absent(f"no batch {batch_id!r} for this key")


@app.page("/v1/tenants/{tenant}/batches", name="submit")
class Submit(ApiView):
    async def post(self, request: web.Request, tenant: str) -> web.Response:
        tenants = self.tenants(request)
        authorization = request.headers["Authorization"]
        wait = _wait_seconds(request)
        if request.headers.get("Content-Type", "").startswith("application/x-ndjson"):
            check_tenant(tenant, tenants)
            lines = body_lines(request)
            accepted = await submit_ndjson(tenant, lines, request.query, authorization)
        else:
            accepted = await submit(tenant, await self.read_json(request), tenants, authorization)
        if wait is not None:
            done = await wait_for_end(tenant, accepted["batch_id"], authorization, wait)
            if done is not None:
                return self.json({**done, **batch_urls(tenant, accepted["batch_id"])}, status=200)
        return self.json(accepted, status=202)


@app.page("/internal/submissions/{tenant}/{batch_id}", name="submitted")
class Submitted(ApiView):
    """The exploder's idempotency record of a batch (for `submit`, on any worker)."""

    @routed(submissions, "tenant")
    async def get(self, request: web.Request, tenant: str, batch_id: str) -> web.Response:
        if tenant not in self.tenants(request):
            raise ApiError("not_found", "no such batch")
        entry = submissions.get(batch_key(tenant, batch_id))
        if entry is None:
            raise absent("no such batch")
        if forget_at(entry) <= time.time():  # the exploder forgets it too
            raise ApiError("not_found", "no such batch")
        return self.json({"hashes": entry["hashes"]})


@app.page("/internal/known/{batch_id}", name="known")
class Known(ApiView):
    """200 once the aggregator knows the tenant's batch (`streams.registrations`), waiting
    for it up to `?within=` seconds (at most `KNOWN_WITHIN_S`); else 404."""

    @routed(batch_state, "batch_id")
    async def get(self, request: web.Request, batch_id: str) -> web.Response:
        tenant = request.query.get("tenant", "")
        if tenant not in self.tenants(request):
            raise ApiError("not_found", "no such batch")
        try:
            within = min(max(0.0, float(request.query.get("within", "0"))), KNOWN_WITHIN_S)
        except ValueError as exc:
            raise ApiError("invalid_batch_format", "within must be seconds") from exc
        check_settled()
        if not await registrations.batch_known(tenant, batch_id, within):
            raise absent("no such batch")
        return self.json({"known": True})


@app.page("/v1/batches/{batch_id}", name="status")
class Status(BatchView):
    @routed(batch_state, "batch_id")
    async def get(self, request: web.Request, batch_id: str) -> web.Response:
        state = self.state_or_404(request, batch_id)
        return self.json(status_answer(state))


@app.page("/v1/batches/{batch_id}/results", name="results")
class Results(BatchView):
    @routed(batch_state, "batch_id")
    async def get(self, request: web.Request, batch_id: str) -> web.Response:
        state = self.state_or_404(request, batch_id)
        cursor, limit = _page(request)
        wanted = request.query.get("status")
        if wanted is not None and wanted not in aggregation.ITEM_STATUS_COUNTER:
            statuses = ", ".join(aggregation.ITEM_STATUS_COUNTER)
            raise ApiError("invalid_batch_format", f"status must be one of {statuses}")
        page: list[dict[str, Any]] = []
        index = cursor
        stored = ResultBlocks().run_from(state["tenant"], batch_id, cursor, state["posted"])
        for raw in stored:  # up to the first item not finished yet: the next page starts there
            result = codec.decode_as("ItemResult", raw)
            if wanted is None or result["status"] == wanted:
                page.append(result)
            index += 1
            if len(page) >= limit or index - cursor >= MAX_SCANNED:
                break
        done = aggregation.is_final(state) and index >= state["posted"]
        return self.json({"results": page, "next_cursor": None if done else str(index)})


def status_answer(state: aggregation.State) -> dict[str, Any]:
    """A batch's status as the routes answer it: its `BatchStatus`, its URLs and, when its
    submission was rejected, the error."""
    return {**aggregation.status_outcome(state), **batch_urls(state["tenant"], state["batch_id"])}


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
class Cancel(BatchView):
    @routed(batch_state, "batch_id")
    async def post(self, request: web.Request, batch_id: str) -> web.Response:
        state = self.state_or_404(request, batch_id)
        event = {"type": "cancel", "tenant": state["tenant"], "batch_id": batch_id}
        what = f"the cancel of batch {batch_id}: send it again"
        await send_all(ledger, batch_id.encode(), [encode_event(event)], what)
        return self.json(status_answer(state), status=202)


@app.page("/internal/active/{tenant}", name="active")
class Active(ApiView):
    """How many of the tenant's batches run on this worker's partitions."""

    async def get(self, request: web.Request, tenant: str) -> web.Response:
        if tenant not in self.tenants(request):
            raise ApiError("not_found", "no such tenant for this key")
        check_settled()
        prefix = batch_key(tenant, "")
        return self.json({"active": sum(1 for key in active_batches if key.startswith(prefix))})
