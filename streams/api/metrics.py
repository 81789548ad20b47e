"""`GET /metrics`: Prometheus text for this worker."""

from __future__ import annotations

from collections import Counter

from faust import web

from streams.agents.process import ItemProcessor
from streams.app import app
from streams.item_processes import ItemProcesses
from streams.metrics import metrics, render
from streams.offsets import topic_lag
from streams.tables import active_batches


async def consumer_lag() -> dict[str, int]:
    lag: Counter[str] = Counter(await topic_lag(app.consumer))
    processor = ItemProcessor.current
    if processor is not None:  # the item processors' own consumer group
        lag.update(await processor.lag())
    processes = ItemProcesses.current
    if processes is not None:
        lag.update(processes.lag())
    return dict(lag)


@app.page("/metrics")
class Metrics(web.View):
    async def get(self, request: web.Request) -> web.Response:
        processes = ItemProcesses.current
        shown = metrics.plus(processes.reports.values()) if processes is not None else metrics
        text = render(len(active_batches), await consumer_lag(), shown)
        return self.text(text, content_type="text/plain; version=0.0.4")
