"""The item executors against a real HTTP server on 127.0.0.1 (aiohttp), and the action registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from streams import builtin_handlers  # noqa: F401  (registers batchwire/noop and batchwire/echo)
from streams.codec import JsonText
from streams.errors import ConfigError
from streams.executors import (
    ActionError,
    HttpExecutor,
    Outcome,
    _decode_output,
    merge_headers,
    run_action,
)
from streams.handlers import (
    ActionContext,
    action,
    get_handler,
    import_handler_modules,
)
from streams.http_headers import parse_retry_after

TENANT = "acme"
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


# ------------------------------------------------------------------------------ the target


@dataclass
class Target:
    """The test server: its base URL and what it has seen."""

    url: str
    hits: Counter[str] = field(default_factory=Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def _app(target: Target) -> web.Application:
    async def json_ok(request: web.Request) -> web.StreamResponse:
        target.hits["json"] += 1
        response = web.json_response({"hello": "world", "n": [1, 2]}, status=200)
        response.headers.add("X-Multi", "a")
        response.headers.add("X-Multi", "b")
        return response

    async def echo(request: web.Request) -> web.StreamResponse:
        target.hits["echo"] += 1
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": [[k.lower(), v] for k, v in request.headers.items()],
                "body": (await request.read()).decode("utf-8"),
            }
        )

    async def flaky(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        target.hits[key] += 1
        if target.hits[key] <= int(request.query.get("fail", "0")):
            return web.Response(status=503, text="busy")
        return web.json_response({"ok": True, "calls": target.hits[key]})

    async def always(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        target.hits[key] += 1
        status = int(request.query.get("status", "503"))
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.Response(status=status, text="nope", headers=headers)

    async def rate_limited(request: web.Request) -> web.StreamResponse:
        target.hits["rate"] += 1
        if target.hits["rate"] == 1:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        return web.json_response({"ok": True})

    async def slow(request: web.Request) -> web.StreamResponse:
        target.hits["slow"] += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(target.release.wait(), timeout=5)
        return web.json_response({"late": True})

    async def redirect(request: web.Request) -> web.StreamResponse:
        target.hits["redirect"] += 1
        raise web.HTTPFound("/json")

    async def text(request: web.Request) -> web.StreamResponse:
        return web.Response(text="just some text", content_type="text/plain")

    async def json_as_text(request: web.Request) -> web.StreamResponse:
        return web.Response(text='{"a": 1}', content_type="text/plain")

    async def empty(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def big(request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        return web.Response(text="é" * (size // 2), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/json", json_ok)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/api/echo", echo)
    app.router.add_route("*", "/flaky/{key}", flaky)
    app.router.add_route("*", "/always/{key}", always)
    app.router.add_get("/rate", rate_limited)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/text", text)
    app.router.add_get("/json-as-text", json_as_text)
    app.router.add_get("/empty", empty)
    app.router.add_get("/big", big)
    return app


@pytest_asyncio.fixture
async def target() -> AsyncIterator[Target]:
    state = Target(url="")
    runner = web.AppRunner(_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


Factory = Callable[..., HttpExecutor]


@pytest_asyncio.fixture
async def make_executor(target: Target) -> AsyncIterator[Factory]:
    made: list[HttpExecutor] = []

    def make(**kwargs: Any) -> HttpExecutor:
        options: dict[str, Any] = {"max_attempts": 3, **FAST}
        options.update(kwargs)
        urls = options.pop("target_urls", {TENANT: target.url})
        executor = HttpExecutor(urls, **options)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        await executor.aclose()


def http_item(
    method: str = "GET",
    path: str = "/json",
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    item_id: str = "i1",
) -> dict[str, Any]:
    return {
        "id": item_id,
        "index": 0,
        "kind": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "body": body,
        "namespace": None,
        "action": None,
        "params": None,
        "group": None,
        "stage": 0,
    }


async def run(
    executor: HttpExecutor,
    item: dict[str, Any],
    *,
    batch_headers: dict[str, str] | None = None,
    deadline_s: float = 30.0,
    tenant: str = TENANT,
) -> Outcome:
    return await executor.run(
        item,
        batch_id="b1",
        tenant=tenant,
        batch_headers=batch_headers or {},
        deadline_at=time.time() + deadline_s,
    )


def seen_headers(outcome: Outcome) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in outcome.output["headers"]:
        headers.setdefault(name, []).append(value)
    return headers


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------------------ HTTP success


async def test_success_with_json_output(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item())
    assert outcome.success is True
    assert outcome.status == "succeeded"
    assert outcome.code == 200
    assert outcome.output == {"hello": "world", "n": [1, 2]}
    assert outcome.errors == []
    assert outcome.attempts == 1
    assert outcome.headers["content-type"].startswith("application/json")
    assert outcome.headers["x-multi"] == "a, b"
    assert all(name == name.lower() for name in outcome.headers)


async def test_string_body_is_sent_as_is(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item("POST", "/echo", body='{"not": json'))
    assert outcome.success
    assert outcome.output["body"] == '{"not": json'
    assert seen_headers(outcome)["content-type"] == ["text/plain; charset=utf-8"]


async def test_string_body_keeps_the_items_content_type(make_executor: Factory) -> None:
    item = http_item("PUT", "/echo", body="<a/>", headers={"content-type": "application/xml"})
    outcome = await run(make_executor(), item)
    assert outcome.output["body"] == "<a/>"
    assert seen_headers(outcome)["content-type"] == ["application/xml"]


async def test_json_body_is_sent_as_json(make_executor: Factory) -> None:
    body = {"name": "zoë", "tags": [1, True, None]}
    outcome = await run(make_executor(), http_item("POST", "/echo", body=body))
    assert outcome.success
    assert outcome.output["method"] == "POST"
    assert json.loads(outcome.output["body"]) == body
    assert seen_headers(outcome)["content-type"] == ["application/json"]


async def test_scalar_json_body(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item("POST", "/echo", body=[1, 2]))
    assert json.loads(outcome.output["body"]) == [1, 2]
    outcome = await run(make_executor(), http_item("POST", "/echo", body=False))
    assert outcome.output["body"] == "false"


async def test_no_body(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item("GET", "/echo"))
    assert outcome.output["body"] == ""
    assert "content-type" not in seen_headers(outcome)


async def test_headers_inherited_overridden_and_hop_by_hop_dropped(
    make_executor: Factory, target: Target
) -> None:
    batch_headers = {
        "Authorization": "Bearer batch-token",
        "X-Batch": "from-batch",
        "X-Override": "from-batch",
        "Host": "evil.example",
        "Content-Length": "999",
        "Connection": "close, X-Private",
        "X-Private": "named-by-connection",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic secret",
        "TE": "trailers",
        "Trailer": "X-Checksum",
        "Transfer-Encoding": "chunked",
        "Upgrade": "websocket",
    }
    item = http_item(
        "POST",
        "/echo",
        body={"x": 1},
        headers={"x-OVERRIDE": "from-item", "idempotency-key": "client-chosen"},
    )
    outcome = await run(make_executor(), item, batch_headers=batch_headers)
    assert outcome.success, outcome.errors
    seen = seen_headers(outcome)
    assert seen["authorization"] == ["Bearer batch-token"]
    assert seen["x-batch"] == ["from-batch"]
    assert seen["x-override"] == ["from-item"]
    assert seen["idempotency-key"] == ["b1:i1"]
    assert seen["host"] == [target.url.removeprefix("http://")]
    assert seen["content-length"] == [str(len(outcome.output["body"]))]
    for dropped in ("keep-alive", "proxy-authorization", "te", "trailer", "upgrade"):
        assert dropped not in seen
    assert "transfer-encoding" not in seen
    assert "x-private" not in seen
    assert seen.get("connection") != ["close, X-Private"]


async def test_item_authorization_overrides_the_batch_token(make_executor: Factory) -> None:
    item = http_item("GET", "/echo", headers={"authorization": "Bearer item-token"})
    outcome = await run(make_executor(), item, batch_headers={"Authorization": "Bearer batch"})
    assert seen_headers(outcome)["authorization"] == ["Bearer item-token"]


def test_merge_headers_is_case_insensitive() -> None:
    merged = merge_headers({"X-A": "1", "x-b": "2"}, {"x-a": "3", "HOST": "h"})
    assert {k.lower(): v for k, v in merged.items()} == {"x-a": "3", "x-b": "2"}
    assert len(merged) == 2


async def test_base_url_path_prefix_is_kept(make_executor: Factory, target: Target) -> None:
    executor = make_executor(target_urls={TENANT: f"{target.url}/api/"})
    outcome = await run(executor, http_item("GET", "/echo?q=1"))
    assert outcome.success
    assert outcome.output["path"] == "/api/echo?q=1"


# ------------------------------------------------------------------------------ output shapes


async def test_non_json_text_output(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item("GET", "/text"))
    assert outcome.success
    assert outcome.output == "just some text"


async def test_json_is_parsed_whatever_the_content_type(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item("GET", "/json-as-text"))
    assert outcome.output == {"a": 1}


async def test_empty_body_gives_none(make_executor: Factory) -> None:
    outcome = await run(make_executor(), http_item("GET", "/empty"))
    assert outcome.success
    assert outcome.code == 204
    assert outcome.output is None


async def test_large_body_is_truncated(make_executor: Factory) -> None:
    executor = make_executor(max_output_bytes=1001)
    outcome = await run(executor, http_item("GET", "/big?size=5000"))
    assert outcome.code == 200
    assert outcome.success
    assert outcome.errors == ["response body truncated at 1001 bytes"]
    # 1001 bytes of two-byte characters: the half character at the end is left out.
    assert outcome.output == "é" * 500


async def test_body_at_the_limit_is_not_truncated(make_executor: Factory) -> None:
    executor = make_executor(max_output_bytes=1000)
    outcome = await run(executor, http_item("GET", "/big?size=1000"))
    assert outcome.errors == []
    assert outcome.output == "é" * 500


# ------------------------------------------------------------------------------ retries


async def test_503_twice_then_200(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(max_attempts=4), http_item("GET", "/flaky/a?fail=2"))
    assert outcome.success
    assert outcome.attempts == 3
    assert outcome.output == {"ok": True, "calls": 3}
    assert target.hits["a"] == 3


async def test_5xx_until_the_last_attempt(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(max_attempts=3), http_item("GET", "/always/b"))
    assert not outcome.success
    assert outcome.status == "failed"
    assert outcome.code == 503
    assert outcome.errors == ["HTTP 503 Service Unavailable"]
    assert outcome.output == "nope"
    assert outcome.attempts == 3
    assert target.hits["b"] == 3


async def test_4xx_is_not_retried(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(), http_item("GET", "/always/c?status=404"))
    assert outcome.code == 404
    assert outcome.errors == ["HTTP 404 Not Found"]
    assert outcome.attempts == 1
    assert target.hits["c"] == 1


async def test_429_retry_after_is_honoured(make_executor: Factory, target: Target) -> None:
    started = time.monotonic()
    outcome = await run(make_executor(backoff_max_s=1.0), http_item("GET", "/rate"))
    elapsed = time.monotonic() - started
    assert outcome.success
    assert outcome.attempts == 2
    assert target.hits["rate"] == 2
    assert elapsed >= 0.95


async def test_retry_after_is_capped(make_executor: Factory, target: Target) -> None:
    # Retry-After 5 s, capped at backoff_max_s * 6 = 0.3 s: every attempt fits in the deadline.
    executor = make_executor(max_attempts=3, backoff_max_s=0.05)
    outcome = await run(executor, http_item("GET", "/always/cap?retry_after=5"), deadline_s=10)
    assert outcome.attempts == 3
    assert target.hits["cap"] == 3


async def test_post_503_not_retried_by_default(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(), http_item("POST", "/always/p", body={"a": 1}))
    assert outcome.code == 503
    assert outcome.attempts == 1
    assert target.hits["p"] == 1


async def test_post_503_retried_when_allowed(make_executor: Factory, target: Target) -> None:
    executor = make_executor(retry_non_idempotent=True)
    outcome = await run(executor, http_item("POST", "/always/q", body={"a": 1}))
    assert outcome.code == 503
    assert outcome.attempts == 3
    assert target.hits["q"] == 3


async def test_put_and_delete_are_retried(make_executor: Factory, target: Target) -> None:
    for method in ("PUT", "DELETE"):
        outcome = await run(make_executor(), http_item(method, f"/always/{method}"))
        assert outcome.attempts == 3
        assert target.hits[method] == 3


async def test_connection_refused(make_executor: Factory) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    executor = make_executor(target_urls={TENANT: url}, max_attempts=3)
    outcome = await run(executor, http_item("GET", "/json"))
    assert not outcome.success
    assert outcome.code is None
    assert outcome.attempts == 3
    assert outcome.errors[0].startswith("ConnectError")


async def test_connection_refused_post_is_retried(make_executor: Factory) -> None:
    # Nothing reached the target, so even a POST is safe to try again.
    url = f"http://127.0.0.1:{closed_port()}"
    executor = make_executor(target_urls={TENANT: url}, max_attempts=2)
    outcome = await run(executor, http_item("POST", "/echo", body={}))
    assert outcome.attempts == 2
    assert outcome.errors[0].startswith("ConnectError")


async def test_read_timeout(make_executor: Factory, target: Target) -> None:
    executor = make_executor(read_timeout=0.2, max_attempts=2)
    outcome = await run(executor, http_item("GET", "/slow"))
    assert not outcome.success
    assert outcome.code is None
    assert outcome.attempts == 2
    assert target.hits["slow"] == 2
    assert outcome.errors == ["ReadTimeout: read timeout after 0.2s"]


async def test_deadline_bounds_a_request(make_executor: Factory, target: Target) -> None:
    executor = make_executor(read_timeout=30.0)
    outcome = await run(executor, http_item("GET", "/slow"), deadline_s=0.3)
    assert not outcome.success
    assert outcome.status == "timed_out"  # the batch's deadline, not the target, cut it
    assert outcome.code is None
    assert outcome.attempts == 1
    assert target.hits["slow"] == 1
    assert outcome.errors[0].startswith("deadline reached")


async def test_deadline_stops_retries(make_executor: Factory, target: Target) -> None:
    # The target asks for 5 s; the deadline is 1 s away: no second attempt.
    executor = make_executor(max_attempts=4, backoff_max_s=10.0)
    outcome = await run(executor, http_item("GET", "/always/d?retry_after=5"), deadline_s=1.0)
    assert outcome.code == 503
    assert outcome.attempts == 1
    assert target.hits["d"] == 1


async def test_past_deadline_sends_nothing(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(), http_item("GET", "/always/e"), deadline_s=-1.0)
    assert not outcome.success
    assert outcome.attempts == 0
    assert target.hits["e"] == 0
    assert "deadline" in outcome.errors[0]


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("-1") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    future = datetime.now(UTC) + timedelta(seconds=120)
    seconds = parse_retry_after(format_datetime(future, usegmt=True))
    assert seconds is not None and 100 < seconds <= 120
    past = datetime.now(UTC) - timedelta(seconds=120)
    assert parse_retry_after(format_datetime(past, usegmt=True)) == 0.0


# ------------------------------------------------------------------------------ refusals


async def test_redirect_is_not_followed(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(), http_item("GET", "/redirect"))
    assert not outcome.success
    assert outcome.code == 302
    assert outcome.errors == ["HTTP 302 Found"]
    assert outcome.headers["location"] == "/json"
    assert outcome.attempts == 1
    assert target.hits["json"] == 0


async def test_unknown_tenant(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(), http_item("GET", "/json"), tenant="nobody")
    assert not outcome.success
    assert outcome.errors == ["no target URL configured for tenant nobody"]
    assert outcome.attempts == 0
    assert target.hits["json"] == 0


async def test_path_cannot_leave_the_base_url(make_executor: Factory, target: Target) -> None:
    executor = make_executor(target_urls={TENANT: f"{target.url}/api"})
    for path in ("/../echo", "/%2e%2e/echo", "/a/../../echo"):
        outcome = await run(executor, http_item("GET", path))
        assert not outcome.success, path
        assert outcome.attempts == 0
    assert target.hits["echo"] == 0


async def test_path_must_be_relative(make_executor: Factory, target: Target) -> None:
    outcome = await run(make_executor(), http_item("GET", "http://127.0.0.1:1/echo"))
    assert not outcome.success
    assert outcome.attempts == 0
    # "//host" after the base URL stays a path on the tenant's host.
    outcome = await run(make_executor(), http_item("GET", "//evil.example/echo"))
    assert outcome.code == 404
    assert outcome.attempts == 1


# ------------------------------------------------------------------------------ actions


CTX = ActionContext(batch_id="b1", tenant=TENANT, item_id="i1", headers={"X-A": "1"})


def action_item(namespace: str, name: str, params: Any) -> dict[str, Any]:
    item = http_item()
    item.update(kind="action", method=None, path=None, namespace=namespace, action=name)
    item["params"] = params
    return item


async def test_sync_action() -> None:
    seen: list[tuple[Any, ActionContext]] = []

    @action("test", "sync")
    def handler(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        seen.append((params, ctx))
        return {"doubled": params["n"] * 2, "pair": (1, 2)}

    outcome = await run_action(action_item("test", "sync", {"n": 21}), CTX)
    assert outcome.success
    assert outcome.status == "succeeded"
    assert outcome.code is None
    # written once, as the codec stores it (a tuple becomes a list)
    assert outcome.output == JsonText('{"doubled":42,"pair":[1,2]}')
    assert outcome.errors == []
    assert outcome.attempts == 1
    assert seen == [({"n": 21}, CTX)]


async def test_async_action() -> None:
    @action("test", "async")
    async def handler(params: dict[str, Any], ctx: ActionContext) -> str:
        await asyncio.sleep(0)
        return f"{ctx.tenant}:{ctx.item_id}:{params['x']}"

    outcome = await run_action(action_item("test", "async", {"x": "y"}), CTX)
    assert outcome.success
    assert outcome.output == "acme:i1:y"


async def test_raising_action() -> None:
    @action("test", "raise")
    async def handler(params: dict[str, Any], ctx: ActionContext) -> None:
        raise KeyError("missing")

    outcome = await run_action(action_item("test", "raise", {}), CTX)
    assert not outcome.success
    assert outcome.status == "failed"
    assert outcome.code is None
    assert outcome.errors == ["KeyError: 'missing'"]


async def test_action_error_sets_code_and_message() -> None:
    @action("test", "action-error")
    def handler(params: dict[str, Any], ctx: ActionContext) -> None:
        raise ActionError("account is closed", code=409)

    outcome = await run_action(action_item("test", "action-error", {}), CTX)
    assert not outcome.success
    assert outcome.code == 409
    assert outcome.errors == ["account is closed"]


async def test_unknown_action() -> None:
    outcome = await run_action(action_item("test", "nope", {}), CTX)
    assert not outcome.success
    assert outcome.errors == ["unknown action test/nope"]
    assert outcome.attempts == 1


async def test_non_serialisable_return() -> None:
    @action("test", "bad-output")
    def handler(params: dict[str, Any], ctx: ActionContext) -> Any:
        return {"when": object()}

    outcome = await run_action(action_item("test", "bad-output", {}), CTX)
    assert not outcome.success
    assert len(outcome.errors) == 1
    assert "not JSON-serialisable" in outcome.errors[0]
    assert "test/bad-output" in outcome.errors[0]


async def test_nan_is_not_json() -> None:
    @action("test", "nan")
    def handler(params: dict[str, Any], ctx: ActionContext) -> float:
        return float("nan")

    outcome = await run_action(action_item("test", "nan", {}), CTX)
    assert not outcome.success


async def test_builtin_handlers() -> None:
    noop = await run_action(action_item("batchwire", "noop", {"a": 1}), CTX)
    assert noop.success and noop.output.value == {"ok": True}
    echo = await run_action(action_item("batchwire", "echo", {"a": [1, "b"]}), CTX)
    assert echo.success and echo.output.value == {"a": [1, "b"]}


def test_re_registering_replaces_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    def first(params: dict[str, Any], ctx: ActionContext) -> int:
        return 1

    def second(params: dict[str, Any], ctx: ActionContext) -> int:
        return 2

    action("test", "replace")(first)
    with caplog.at_level(logging.WARNING, logger="streams.handlers"):
        returned = action("test", "replace")(second)
    assert returned is second
    assert get_handler("test", "replace") is second
    assert any("re-registered" in record.getMessage() for record in caplog.records)


def test_action_needs_names() -> None:
    with pytest.raises(ValueError):
        action("", "x")
    with pytest.raises(ValueError):
        action("x", "")


def test_import_handler_modules() -> None:
    import_handler_modules(["streams.builtin_handlers", " ", ""])
    assert get_handler("batchwire", "noop") is not None
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        import_handler_modules(["no_such_module_xyz"])


async def test_many_concurrent_requests_share_the_pool(
    make_executor: Factory, target: Target
) -> None:
    executor = make_executor(max_connections=4)
    calls: list[Awaitable[Outcome]] = [
        run(executor, http_item("GET", "/json", item_id=str(i))) for i in range(40)
    ]
    outcomes = await asyncio.gather(*calls)
    assert all(o.success for o in outcomes)
    assert target.hits["json"] == 40


async def test_a_handler_calling_sys_exit_fails_its_item_and_not_the_worker() -> None:
    @action("test", "exit")
    def handler(params: dict[str, Any], ctx: ActionContext) -> None:
        raise SystemExit(3)

    outcome = await run_action(action_item("test", "exit", {}), CTX)
    assert outcome.status == "failed"
    assert outcome.errors == ["SystemExit: 3"]


@pytest.mark.parametrize(
    "body",
    [b'{"a": NaN}', b"[Infinity]", b'{"a": "\\ud800"}', b'{"\\udc00": 1}', b"1" * 5000],
)
def test_an_answer_no_result_can_hold_as_json_is_kept_as_its_text(body: bytes) -> None:
    """NaN and Infinity are not JSON to most parsers, a lone surrogate is no UTF-8 text and
    Python refuses integers past 4,300 digits: the item's output is the answer's text."""
    assert _decode_output(body, "utf-8", truncated=False) == body.decode()


def test_a_json_answer_is_parsed() -> None:
    assert _decode_output(b'{"a": [1, "\\u00e9"]}', None, truncated=False) == {"a": [1, "é"]}


@pytest.mark.parametrize("charset", ["hex", "zlib", "base64", "rot13", "idna", "no-such-charset"])
def test_a_charset_that_cannot_decode_text_falls_back_to_utf_8(charset: str) -> None:
    assert _decode_output('{"a": "é"}'.encode(), charset, truncated=False) == {"a": "é"}
