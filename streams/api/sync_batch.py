"""`POST /v1/batch`: the synchronous form, `[{id, method, path, headers, body, transaction}]`
answered `[{id, code, headers, body}]` in order.

`?callback_url=` asks for a batch callback, as the other submit routes can.
The request's own headers (except `Authorization`, `Host`, `Content-Length` and hop-by-hop
headers) are the batch headers every item inherits unless it sets its own; `transaction`
becomes the item's group, so one transaction's requests run together, in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from faust import web

from streams.api.errors import ApiError
from streams.api.submit import submit, wait_for_end
from streams.api.views import ApiView
from streams.app import app
from streams.http_headers import HOP_BY_HOP_HEADERS

MAX_REQUESTS = 100
DEFAULT_WAIT_S = 30.0
#: the batch request's own: its key, its host, and how its body (the batch) is sent
NOT_INHERITED = HOP_BY_HOP_HEADERS | {
    "authorization",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
}
#: a detail's path in the internal batch, and the request field it stands for
_ITEM_PATH = re.compile(r"^\$\.items(\[\d+\])(\.group)?")
#: the answer's `code` for an item that got no HTTP answer
CODE_WITHOUT_ANSWER = {"skipped": 424, "cancelled": 409, "timed_out": 504, "failed": 502}


def caller_tenant(tenants: frozenset[str], request: web.Request) -> str:
    """The tenant a request acts for: `?tenant=`, or the key's only tenant."""
    named = request.query.get("tenant")
    if named is not None:
        if named not in tenants:
            raise ApiError("tenant_not_allowed", f"this key may not act for tenant {named!r}")
        return named
    if len(tenants) != 1:
        raise ApiError(
            "invalid_batch_format", "this key holds several tenants: name one with ?tenant="
        )
    return next(iter(tenants))


def to_items(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise ApiError("invalid_batch_format", "the body must be a JSON array", [{"path": "$"}])
    if len(body) > MAX_REQUESTS:
        raise ApiError("too_many_items", f"at most {MAX_REQUESTS} requests per batch")
    items = []
    for index, request in enumerate(body):
        if not isinstance(request, dict):
            raise ApiError(
                "invalid_batch_format", "each request must be an object", [{"path": f"$[{index}]"}]
            )
        item = {
            "id": request.get("id"),
            "method": request.get("method"),
            "path": request.get("path"),
            "headers": request.get("headers"),
            "body": request.get("body"),
            "group": request.get("transaction"),
        }
        items.append({k: v for k, v in item.items() if v is not None or k in ("method", "path")})
    return items


def request_path(path: str) -> str:
    """A detail's path in the internal batch (`$.items[i].group`) as the request's
    (`$[i].transaction`)."""
    return _ITEM_PATH.sub(lambda m: "$" + m[1] + (".transaction" if m[2] else ""), path, 1)


def inherited_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The request's headers every item inherits: not the hop-by-hop ones, nor those its
    `Connection` header names (RFC 9110 7.6.1). One that is not UTF-8 text (the server
    decodes bytes it cannot read to lone surrogates) is `invalid_batch_format`."""
    pairs = list(pairs)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    skipped = NOT_INHERITED | named
    headers = {name: value for name, value in pairs if name.lower() not in skipped}
    for name, value in headers.items():
        if not (name + value).isascii():
            try:
                (name + value).encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(
                    "invalid_batch_format",
                    "a request header is not UTF-8 text",
                    [{"path": "$headers", "message": f"header {name!a}"}],
                ) from None
    return headers


def answer_of(result: dict[str, Any], given_ids: dict[str, Any]) -> dict[str, Any]:
    """A request's answer, under the `id` it was given (an integer stays one)."""
    code = result["code"] or CODE_WITHOUT_ANSWER.get(result["status"], 502)
    body = result["output"] if result["code"] else {"errors": result["errors"]}
    item_id = given_ids.get(result["item_id"], result["item_id"])
    return {"id": item_id, "code": code, "headers": result["headers"], "body": body}


@app.page("/v1/batch", name="sync-batch")
class SyncBatch(ApiView):
    async def post(self, request: web.Request) -> web.Response:
        tenants = self.tenants(request)
        tenant = caller_tenant(tenants, request)
        items = to_items(await self.read_json(request))
        headers = inherited_headers(request.headers.items())
        authorization = request.headers["Authorization"]
        batch: dict[str, Any] = {"items": items, "headers": headers}
        if request.query.get("callback_url"):
            batch["callback"] = {"url": request.query["callback_url"], "mode": "batch"}
        try:
            accepted = await submit(tenant, batch, tenants, authorization)
        except ApiError as exc:  # point details at the request array, not the internal batch
            for detail in exc.details:
                if isinstance(detail.get("path"), str):
                    detail["path"] = request_path(detail["path"])
            raise
        done = await wait_for_end(tenant, accepted["batch_id"], authorization, DEFAULT_WAIT_S)
        if done is None or done["next_cursor"] is not None:  # not ended, or results missing
            return self.json(accepted, status=202)
        given_ids = {str(item["id"]): item["id"] for item in items if "id" in item}
        return self.json([answer_of(r, given_ids) for r in done["results"]], status=200)
