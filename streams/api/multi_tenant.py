"""`POST /v1/batches:multi-tenant`: one batch for each of several tenants, answered 200 when
every tenant got it, else 207 with `postedSuccess {tenant: batch_id}` and
`postedProblems {tenant: [errors]}`."""

from __future__ import annotations

from typing import Any

from faust import web

from streams.api.errors import ApiError
from streams.api.kafka_sends import unavailable
from streams.api.submit import submit
from streams.api.views import ApiView
from streams.app import app
from streams.batch_urls import batch_urls

#: tenants one call may name: each is a submit, answered in one response
MAX_TENANTS = 100


@app.page("/v1/batches:multi-tenant", name="multi-tenant")
class MultiTenant(ApiView):
    """`{tenants[], batch}`: one batch per tenant; a tenant that fails is a problem of its own."""

    async def post(self, request: web.Request) -> web.Response:
        tenants = self.tenants(request)
        body = await self.read_json(request)
        names = body.get("tenants") if isinstance(body, dict) else None
        if not (
            isinstance(names, list)
            and 0 < len(names) <= MAX_TENANTS
            and len(set(map(str, names))) == len(names)
        ):
            raise ApiError(
                "invalid_batch_format",
                "expected {tenants: [...], batch: {...}}",
                [
                    {
                        "path": "$.tenants",
                        "message": f"a list of 1 to {MAX_TENANTS} distinct tenant names",
                    }
                ],
            )
        authorization = request.headers["Authorization"]
        success: dict[str, str] = {}
        problems: dict[str, list[dict[str, Any]]] = {}
        down: str | None = None  # the tenant for which Kafka or a worker did not answer
        for tenant in map(str, names):  # a name that is no string is a problem of its own
            if down is not None:  # each would wait as long again: not tried
                message = f"not tried: Kafka or a worker did not answer for tenant {down}"
                problems[tenant] = [unavailable(message).body()["error"]]
                continue
            try:
                accepted = await submit(tenant, body.get("batch"), tenants, authorization)
            except ApiError as exc:
                problems[tenant] = [exc.body()["error"]]
                down = tenant if exc.code == "unavailable" else None
            else:
                success[tenant] = accepted["batch_id"]
        answer = {
            "postedSuccess": success,
            "postedProblems": problems,
            "status_urls": {t: batch_urls(t, b)["status_url"] for t, b in success.items()},
        }
        return self.json(answer, status=207 if problems else 200)
