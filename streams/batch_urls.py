"""The URLs a client is given for one batch (the submit answer, the status, the callback)."""

from __future__ import annotations

from urllib.parse import quote

from streams.app import app


def batch_urls(tenant: str, batch_id: str) -> dict[str, str]:
    """`status_url` and `results_url` of a tenant's batch. They name the tenant: a key may
    hold several tenants, each with its own batch under the same id."""
    base = f"{str(app.conf.canonical_url).rstrip('/')}/v1/batches/{quote(batch_id, safe=':')}"
    query = f"?tenant={quote(tenant, safe='')}"
    return {"status_url": f"{base}{query}", "results_url": f"{base}/results{query}"}
