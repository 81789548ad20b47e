"""HTTP views served by every worker (Faust web)."""

from __future__ import annotations

from faust import web

from streams.app import app


@app.page("/healthz")
class Health(web.View):
    """Liveness; `ready` is true once this worker has partitions and has recovered its tables."""

    async def get(self, request: web.Request) -> web.Response:
        consumer = app.consumer
        ready = not app.rebalancing and not app.in_recovery and bool(consumer.assignment())
        return self.json({"status": "ok", "ready": ready})
