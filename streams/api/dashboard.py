"""The read-only dashboard: `GET /dashboard` (the page) and `GET /v1/dashboard` (its data).

The page asks for a tenant key and shows that key's tenants' batches, gathered from every
worker (each holds the batches of its own partitions), refreshing itself every second.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from importlib import resources
from typing import Any

from faust import web

from streams import aggregation
from streams.api.kafka_sends import unavailable
from streams.api.submit import each_worker
from streams.api.views import ApiView, check_settled
from streams.app import app
from streams.keys import split_batch_key
from streams.reused_scans import ReusedScans
from streams.tables import batch_state

SHOWN_BATCHES = 100
#: batch states read between two turns of the event loop (~5 ms of reading)
STATES_PER_TURN = 1000
PAGE = resources.files("streams.web").joinpath("dashboard.html").read_text()


@app.page("/dashboard", name="dashboard")
class Dashboard(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.html(PAGE)


@app.page("/v1/dashboard", name="dashboard-data")
class DashboardData(ApiView):
    async def get(self, request: web.Request) -> web.Response:
        self.tenants(request)  # 401 before asking the other workers
        batches: list[dict[str, Any]] = []
        by_tenant: dict[str, Counter[str]] = {}
        for answer in await each_worker("/internal/batches", request.headers["Authorization"]):
            batches.extend(answer["batches"])
            for tenant, counts in answer["counts"].items():
                by_tenant.setdefault(tenant, Counter()).update(counts)
        batches.sort(key=lambda b: b["updated_at"], reverse=True)
        return self.json(
            {
                "tenants": {t: dict(sorted(c.items())) for t, c in sorted(by_tenant.items())},
                "batches": batches[:SHOWN_BATCHES],
            }
        )


@app.page("/internal/batches", name="local-batches")
class LocalBatches(ApiView):
    """The key's tenants' batches on this worker's partitions: their count per status, and
    the `SHOWN_BATCHES` last updated, without their metadata and item errors (a poll every
    second must not carry up to 64 KB of metadata for each of a week's batches). Read from
    the whole table, so the answer is reused a while (`streams.reused_scans`)."""

    async def get(self, request: web.Request) -> web.Response:
        tenants = self.tenants(request)
        check_settled()  # tables read in part way would miscount
        return self.json(await _scans.answer(tenants, lambda: _batches_of(tenants)))


#: the last answers of `_batches_of`, reused while they are fresh (`streams.reused_scans`)
_scans = ReusedScans()


async def _batches_of(tenants: frozenset[str]) -> dict[str, Any]:
    """The tenants' batches on this worker: counts per status, the last updated rows. The
    read gives the event loop a turn every `STATES_PER_TURN` states, so that a table of
    100,000s of batches does not hold every other request and agent for seconds."""
    try:
        return await _read_batches_of(tenants)
    except RuntimeError as exc:
        if "changed size during iteration" not in str(exc):
            raise
        # a rebalance gave or took a partition of the store during the read
        raise unavailable("this worker's partitions changed while read: try again") from exc


async def _read_batches_of(tenants: frozenset[str]) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = {}
    latest: list[tuple[str, str, aggregation.State]] = []  # a heap, oldest first
    for n, (key, state) in enumerate(batch_state.items(), 1):
        if n % STATES_PER_TURN == 0:
            await asyncio.sleep(0)
        tenant = split_batch_key(key)[0]
        if tenant not in tenants:
            continue
        counts.setdefault(tenant, Counter())[state["status"]] += 1
        entry = (state["updated_at"], key, state)
        if len(latest) < SHOWN_BATCHES:
            heapq.heappush(latest, entry)
        elif entry[:2] > latest[0][:2]:
            heapq.heapreplace(latest, entry)
    rows = [_row(state) for _, _, state in sorted(latest, key=lambda e: e[:2], reverse=True)]
    return {"counts": counts, "batches": rows}


def _row(state: aggregation.State) -> dict[str, Any]:
    record = aggregation.status_record(state)
    return {name: record[name] for name in ROW_FIELDS}


#: what the dashboard shows of a batch
ROW_FIELDS = ("batch_id", "tenant", "status", "counters", "created_at", "updated_at")
