"""`GET /healthz`: liveness, and whether this worker is ready (assigned and recovered, not
stopping, and its item processes in their group)."""

from __future__ import annotations

from faust import web
from faust.exceptions import ConsumerNotStarted

from streams import item_processes
from streams.api.views import unsettled
from streams.app import app


def is_ready() -> bool:
    try:
        assigned = bool(app.consumer.assignment())
    except ConsumerNotStarted:  # asked in the first moments of start-up (it answered 500)
        return False
    return unsettled() is None and assigned and item_processes.ready()


@app.page("/healthz")
class Health(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.json({"status": "ok", "ready": is_ready()})
