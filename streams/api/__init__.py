"""The HTTP API on Faust web views: submit, status, results, cancel, health.

Lookups are routed (`streams.api.views.routed`, on `@app.table_route`) to the worker that
owns the batch's partition, so any worker answers any route.  Submissions go straight to
Kafka (a routed request would lose its body).
"""

from streams.api import (
    batches,
    dashboard,
    health,
    metrics,
    multi_tenant,
    openapi,
    sync_batch,
)

__all__ = [
    "batches",
    "dashboard",
    "health",
    "metrics",
    "multi_tenant",
    "openapi",
    "sync_batch",
]
