"""The base view every API view extends: contract errors, auth, JSON bodies."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.web_exceptions import HTTPRequestEntityTooLarge
from faust import web
from faust.types.tables import CollectionT
from yarl import URL

from streams import codec
from streams.api.auth import tenants_of
from streams.api.errors import ApiError, body_too_large
from streams.api.kafka_sends import unavailable
from streams.app import app, settings
from streams.errors import SubmissionError
from streams.http_limits import MAX_BODY_BYTES
from streams.validation import MAX_JSON_DEPTH, check_depth, check_unicode, may_hold_surrogates

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]

TAKING_OVER = "this worker is taking over partitions (a rebalance): try again"
STOPPING = "this worker is stopping: try again"


def unsettled() -> str | None:
    """Why this worker's tables cannot answer for its partitions now, or None: it is taking
    partitions over (a rebalance, then its tables' recovery from their changelogs), or it
    is stopping (faust closes the tables' stores before the web server)."""
    if app.should_stop:
        return STOPPING
    if app.rebalancing or app.in_recovery:
        return TAKING_OVER
    return None


def absent(message: str) -> ApiError:
    """`not_found` for what this worker's tables do not hold, or 503 `unavailable` while
    they cannot answer (`unsettled`): a batch of a partition not read in yet would look
    absent, and a client told 404 could give up on it."""
    why = unsettled()
    return ApiError("not_found", message) if why is None else unavailable(why)


def check_settled() -> None:
    """503 `unavailable` while this worker's tables cannot answer (`unsettled`). A batch's
    state read in part way is an older one: its status would step back (`in_progress`
    after `completed`) and a tenant's batches would be undercounted for the active-batch
    limit; a stopping worker's closed stores would answer 404."""
    why = unsettled()
    if why is not None:
        raise unavailable(why)


def routed(table: CollectionT, match_info: str) -> Callable[[Handler], Handler]:
    """`app.table_route`: the request is answered by the worker that owns the key (the URL's
    `match_info` part) in `table`. While that owner is not known here (a rebalance, or the
    first moments of a worker, before its producer has the changelog topic's metadata),
    the answer is the contract's 503 `unavailable`, not faust's body of its own or a 500."""

    def decorator(handler: Handler) -> Handler:
        forwarded = app.table_route(table=table, match_info=match_info)(handler)

        @functools.wraps(handler)
        async def route(view: web.View, request: web.Request, *args: Any, **kwargs: Any) -> Any:
            # the lookup faust's router makes first (without an await between)
            if _owner(table, request.match_info[match_info]) is None:
                raise unavailable(TAKING_OVER)
            return await forwarded(view, request, *args, **kwargs)

        return route

    return decorator


def _owner(table: CollectionT, key: str) -> URL | None:
    """The URL of the worker that owns `key` in `table`, as faust's router finds it; None
    while no owner is known (a rebalance: a `KeyError`; a producer without the changelog
    topic's metadata yet: a `TypeError`)."""
    try:
        return app.router.key_store(table.name, key)
    except (KeyError, TypeError):
        return None


def owned_here(table: CollectionT, key: str) -> bool:
    """Whether this worker owns `key` in `table` (a routed request would be answered here)."""
    owner = _owner(table, key)
    here = URL(str(app.conf.canonical_url))
    return owner is not None and (owner.host, owner.port) == (here.host, here.port)


class ApiView(web.View):
    """Turns an `ApiError` raised by a handler into the contract's error answer."""

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except ApiError as exc:
            return self.error_response(exc)
        except aiohttp.ClientError as exc:  # faust's table_route forwarding to the owner
            log.warning("%s %s: %r", request.method, request.path, exc)
            message = "a worker this answer needs did not answer: try again"
            return self.error_response(unavailable(message))
        except ConnectionResetError:
            # The client left before its body was read (nothing of it was published): no
            # fault of ours, not worth aiohttp's ERROR and traceback. The answer goes nowhere.
            log.info("%s %s: the client closed the connection", request.method, request.path)
            return self.error_response(
                ApiError("invalid_json", "the connection closed before the body was read")
            )

    def error_response(self, exc: ApiError) -> web.Response:
        return self.json(exc.body(), status=exc.status, headers=exc.headers or None)

    def tenants(self, request: web.Request) -> frozenset[str]:
        return tenants_of(request.headers.get("Authorization"), settings.tenant_keys)

    def lookup_tenants(self, request: web.Request) -> frozenset[str]:
        """The key's tenants, narrowed to `?tenant=` when given (a key may hold several)."""
        tenants = self.tenants(request)
        named = request.query.get("tenant")
        return tenants & {named} if named is not None else tenants

    async def read_json(self, request: web.Request) -> Any:
        """The request's JSON body, or the contract's error for a bad one."""
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise ApiError("invalid_json", f"expected application/json, got {content_type!r}")
        length = request.content_length  # type: ignore[attr-defined]
        if length is not None and length > MAX_BODY_BYTES:
            raise body_too_large(MAX_BODY_BYTES)
        try:
            raw: bytes = await request.read()
        except HTTPRequestEntityTooLarge as exc:  # streamed: aiohttp stops at client_max_size
            raise body_too_large(MAX_BODY_BYTES) from exc
        try:
            # a str, not bytes: json.loads(bytes) would let surrogates in
            value = codec.loads_strict(raw.decode("utf-8-sig"))
        except RecursionError as exc:
            message = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            raise ApiError(
                "invalid_batch_format", message, [{"path": "$", "message": message}]
            ) from exc
        except UnicodeDecodeError as exc:
            raise ApiError("invalid_json", f"the body is not UTF-8: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ApiError(
                "invalid_json",
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                [{"path": "$", "message": exc.msg, "line": exc.lineno, "column": exc.colno}],
            ) from exc
        except ValueError as exc:  # NaN, Infinity, an integer too long to convert
            raise ApiError("invalid_json", f"invalid JSON: {exc}") from exc
        try:
            check_depth(value)
            if may_hold_surrogates(raw):
                check_unicode(value)
        except SubmissionError as exc:
            raise ApiError.of(exc) from exc
        return value
