"""`GET /healthz`: liveness, and whether this worker is ready (assigned and recovered, and its
item processes in their group)."""

from __future__ import annotations

from faust import web

from streams import item_processes
from streams.app import app


@app.page("/healthz")
class Health(web.View):
    async def get(self, request: web.Request) -> web.Response:
        ready = (
            not app.rebalancing
            and not app.in_recovery
            and bool(app.consumer.assignment())
            and item_processes.ready()
        )
        return self.json({"status": "ok", "ready": ready})
