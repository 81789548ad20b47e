"""The read-only dashboard: `GET /dashboard` (the page) and `GET /v1/dashboard` (its data).

The page asks for a tenant key and shows that key's tenants' batches, gathered from every
worker (each holds the batches of its own partitions), refreshing itself every second.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Any

from faust import web

from streams import aggregation
from streams.api.submit import each_worker
from streams.api.views import ApiView
from streams.app import app
from streams.keys import split_batch_key
from streams.tables import batch_state

SHOWN_BATCHES = 100
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
        for answer in await each_worker("/internal/batches", request.headers["Authorization"]):
            batches.extend(answer["batches"])
        by_tenant: dict[str, Counter[str]] = {}
        for batch in batches:
            by_tenant.setdefault(batch["tenant"], Counter())[batch["status"]] += 1
        batches.sort(key=lambda b: b["updated_at"], reverse=True)
        return self.json(
            {
                "tenants": {t: dict(sorted(c.items())) for t, c in sorted(by_tenant.items())},
                "batches": batches[:SHOWN_BATCHES],
            }
        )


@app.page("/internal/batches", name="local-batches")
class LocalBatches(ApiView):
    """The status of every batch of the key's tenants on this worker's partitions."""

    async def get(self, request: web.Request) -> web.Response:
        tenants = self.tenants(request)
        batches = [
            aggregation.status_record(state)
            for key, state in batch_state.items()
            if split_batch_key(key)[0] in tenants
        ]
        return self.json({"batches": batches})
