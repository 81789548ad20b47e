"""One webhook delivery attempt against real HTTP servers on 127.0.0.1 (aiohttp), no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict

from connectors.delivery import (
    RESPONSE_LIMIT,
    TOTAL_TIMEOUT_CLASS,
    AttemptResult,
    Deliverer,
    Verdict,
    classify_status,
    endpoint_key,
)
from connectors.ssrf import AddressGuard
from streams.http_headers import parse_retry_after

BIG_BODY = bytes(ord("a") + i % 26 for i in range(100 * 1024))
WEBHOOK_HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_2b7c1f",
    "webhook-timestamp": "1767225600",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}


@dataclass
class Seen:
    method: str
    path: str
    body: bytes
    headers: CIMultiDict[str]


@dataclass
class Server:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # opens /gated
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # ends slow handlers

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]


def _app(server: Server) -> web.Application:
    async def record(request: web.Request) -> None:
        body = await request.read()
        server.seen.append(Seen(request.method, request.path, body, CIMultiDict(request.headers)))

    async def status(request: web.Request) -> web.StreamResponse:
        await record(request)
        code = int(request.match_info["code"])
        headers = {}
        if "x-reply-retry-after" in request.headers:
            headers["Retry-After"] = request.headers["x-reply-retry-after"]
        if 300 <= code < 400:
            headers["Location"] = f"{server.url}/target"
        text = None if code == 204 else f"status {code}"
        return web.Response(status=code, text=text, headers=headers)

    async def target(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(text="redirect target")

    async def sleep(request: web.Request) -> web.StreamResponse:
        await record(request)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.stop.wait(), 10)
        return web.Response(text="too late")

    async def trickle(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(status=200)
        response.content_length = 1000
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            for _ in range(200):  # one byte every 50 ms: never idle long enough for a read timeout
                if server.stop.is_set():
                    break
                await response.write(b"x")
                await asyncio.sleep(0.05)
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=BIG_BODY, content_type="text/plain")

    async def endless(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(status=200)
        response.content_length = len(BIG_BODY) * 100
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await response.write(BIG_BODY[: RESPONSE_LIMIT * 2])
            await asyncio.wait_for(server.stop.wait(), 10)  # the rest never comes
        return response

    async def binary(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=b"ok \xff\xfe end", content_type="application/octet-stream")

    async def gated(request: web.Request) -> web.StreamResponse:
        await record(request)
        server.in_flight += 1
        server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            await asyncio.wait_for(server.gate.wait(), 10)
            await asyncio.sleep(0.02)
        finally:
            server.in_flight -= 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/status/{code}", status)
    app.router.add_route("*", "/target", target)
    app.router.add_post("/sleep", sleep)
    app.router.add_post("/trickle", trickle)
    app.router.add_post("/big", big)
    app.router.add_post("/endless", endless)
    app.router.add_post("/binary", binary)
    app.router.add_post("/gated", gated)
    return app


StartServer = Callable[[], Awaitable[Server]]
MakeDeliverer = Callable[..., Deliverer]


@pytest_asyncio.fixture
async def start_server() -> AsyncIterator[StartServer]:
    started: list[tuple[Server, web.AppRunner]] = []

    async def start() -> Server:
        server = Server()
        runner = web.AppRunner(_app(server), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=0.5).start()
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.append((server, runner))
        return server

    yield start
    for server, runner in started:
        server.stop.set()
        server.gate.set()
        await runner.cleanup()


@pytest_asyncio.fixture
async def server(start_server: StartServer) -> Server:
    return await start_server()


@pytest_asyncio.fixture
async def make_deliverer() -> AsyncIterator[MakeDeliverer]:
    made: list[Deliverer] = []

    def make(**kwargs: Any) -> Deliverer:
        deliverer = Deliverer(**kwargs)
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        await deliverer.aclose()


@pytest_asyncio.fixture
async def deliverer(make_deliverer: MakeDeliverer) -> Deliverer:
    return make_deliverer()


async def post_status(
    deliverer: Deliverer, server: Server, code: int, retry_after: str | None = None
) -> AttemptResult:
    headers = dict(WEBHOOK_HEADERS)
    if retry_after is not None:
        headers["x-reply-retry-after"] = retry_after
    return await deliverer.attempt(f"{server.url}/status/{code}", b'{"n": 1}', headers)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# ----------------------------------------------------------------------------------- delivered


@pytest.mark.parametrize("code", [200, 204])
async def test_2xx_is_delivered_with_the_exact_body_and_headers(
    deliverer: Deliverer, server: Server, code: int
) -> None:
    body = b'{"batch_id": "b1", "status": "completed", "caf\xc3\xa9": [1, 2]}'
    started = time.monotonic()
    result = await deliverer.attempt(f"{server.url}/status/{code}", body, WEBHOOK_HEADERS)
    elapsed_ms = (time.monotonic() - started) * 1000

    assert result.verdict is Verdict.DELIVERED
    assert result.http_status == code
    assert result.error_class is None
    assert result.retry_after_s is None
    assert result.response == ("" if code == 204 else f"status {code}")
    assert 0 < result.latency_ms <= elapsed_ms
    [seen] = server.seen
    assert seen.method == "POST"
    assert seen.path == f"/status/{code}"
    assert seen.body == body
    for name, value in WEBHOOK_HEADERS.items():
        assert seen.headers.getall(name) == [value]
    assert seen.headers["Content-Length"] == str(len(body))


# --------------------------------------------------------------------------------------- retry


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_5xx_is_retried(deliverer: Deliverer, server: Server, code: int) -> None:
    result = await post_status(deliverer, server, code)
    assert result.verdict is Verdict.RETRY
    assert result.http_status == code
    assert result.error_class == "HTTPStatus"
    assert result.response == f"status {code}"
    assert result.retry_after_s is None


@pytest.mark.parametrize("code", [408, 429])
async def test_408_and_429_are_retried_with_retry_after_seconds(
    deliverer: Deliverer, server: Server, code: int
) -> None:
    result = await post_status(deliverer, server, code, retry_after="7")
    assert result.verdict is Verdict.RETRY
    assert result.http_status == code
    assert result.error_class == "HTTPStatus"
    assert result.retry_after_s == 7.0


async def test_retry_after_as_an_http_date(deliverer: Deliverer, server: Server) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    result = await post_status(deliverer, server, 429, retry_after=format_datetime(when, True))
    assert result.verdict is Verdict.RETRY
    assert result.retry_after_s is not None
    assert 25.0 < result.retry_after_s <= 30.0


async def test_503_with_an_invalid_retry_after(deliverer: Deliverer, server: Server) -> None:
    result = await post_status(deliverer, server, 503, retry_after="soon, maybe")
    assert result.verdict is Verdict.RETRY
    assert result.retry_after_s is None


async def test_connection_refused_is_retried(deliverer: Deliverer) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    result = await deliverer.attempt(url, b"{}", WEBHOOK_HEADERS)
    assert result.verdict is Verdict.RETRY
    assert result.error_class == "ConnectError"
    assert result.http_status is None
    assert result.response is None
    assert result.latency_ms >= 0


async def test_a_guarded_deliverer_never_connects_to_a_refused_address(
    make_deliverer: MakeDeliverer, server: Server
) -> None:
    """The guard also applies where the connection is made, not only to `check`'s own
    lookup (which a name may answer otherwise): `localhost` resolves to loopback."""
    hook = f"http://localhost:{server.url.rsplit(':', 1)[1]}/status/200"
    refusing = make_deliverer(guard=AddressGuard([]))
    result = await refusing.attempt(hook, b"{}", WEBHOOK_HEADERS)
    assert result.verdict is Verdict.RETRY
    assert result.error_class == "ConnectError"
    assert server.seen == []
    allowing = make_deliverer(guard=AddressGuard(["127.0.0.0/8", "::1/128"]))
    result = await allowing.attempt(hook, b"{}", WEBHOOK_HEADERS)
    assert result.verdict is Verdict.DELIVERED
    assert server.paths() == ["/status/200"]


async def test_a_handler_slower_than_the_timeout_is_retried(
    make_deliverer: MakeDeliverer, server: Server
) -> None:
    deliverer = make_deliverer(total_timeout_s=0.5)
    started = time.monotonic()
    result = await deliverer.attempt(f"{server.url}/sleep", b"{}", WEBHOOK_HEADERS)
    elapsed = time.monotonic() - started

    assert result.verdict is Verdict.RETRY
    assert result.error_class in {"ReadTimeout", TOTAL_TIMEOUT_CLASS}
    assert result.http_status is None
    assert server.paths() == ["/sleep"]
    assert 0.45 <= elapsed < 5.0
    assert 450 <= result.latency_ms < 5000


async def test_a_trickled_body_cannot_exceed_the_total_timeout(
    make_deliverer: MakeDeliverer, server: Server
) -> None:
    deliverer = make_deliverer(total_timeout_s=0.5)
    started = time.monotonic()
    result = await deliverer.attempt(f"{server.url}/trickle", b"{}", WEBHOOK_HEADERS)
    elapsed = time.monotonic() - started

    # Bytes keep arriving every 50 ms, so only the overall bound can end the attempt.
    assert result.verdict is Verdict.RETRY
    assert result.error_class == TOTAL_TIMEOUT_CLASS
    assert result.http_status is None
    assert 0.45 <= elapsed < 5.0


# -------------------------------------------------------------------------- limited and gone


@pytest.mark.parametrize("code", [400, 404, 422])
async def test_other_4xx_are_retried_a_limited_number_of_times(
    deliverer: Deliverer, server: Server, code: int
) -> None:
    result = await post_status(deliverer, server, code)
    assert result.verdict is Verdict.RETRY_LIMITED
    assert result.http_status == code
    assert result.error_class == "HTTPStatus"
    assert result.response == f"status {code}"


@pytest.mark.parametrize("code", [301, 302, 307])
async def test_redirects_are_not_followed(deliverer: Deliverer, server: Server, code: int) -> None:
    result = await post_status(deliverer, server, code)
    assert result.verdict is Verdict.RETRY_LIMITED
    assert result.http_status == code
    assert result.error_class == "HTTPStatus"
    assert server.paths() == [f"/status/{code}"]  # the Location target was never requested


async def test_410_means_gone(deliverer: Deliverer, server: Server) -> None:
    result = await post_status(deliverer, server, 410)
    assert result.verdict is Verdict.GONE
    assert result.http_status == 410
    assert result.error_class == "HTTPStatus"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "/relative/hook", "http://", "::nonsense"])
async def test_an_unusable_url_is_retried_a_limited_number_of_times(
    deliverer: Deliverer, url: str
) -> None:
    result = await deliverer.attempt(url, b"{}", WEBHOOK_HEADERS)
    assert result.verdict is Verdict.RETRY_LIMITED
    assert result.error_class == "InvalidURL"
    assert result.http_status is None


# ----------------------------------------------------------------------------------- responses


async def test_a_large_response_is_truncated(deliverer: Deliverer, server: Server) -> None:
    result = await deliverer.attempt(f"{server.url}/big", b"{}", WEBHOOK_HEADERS)
    assert result.verdict is Verdict.DELIVERED
    assert result.response == BIG_BODY[:RESPONSE_LIMIT].decode()
    assert RESPONSE_LIMIT == 4096


async def test_reading_stops_at_the_limit(make_deliverer: MakeDeliverer, server: Server) -> None:
    deliverer = make_deliverer(total_timeout_s=3.0)
    started = time.monotonic()
    result = await deliverer.attempt(f"{server.url}/endless", b"{}", WEBHOOK_HEADERS)
    # Had it waited for the whole (announced but never sent) body, it would have timed out.
    assert time.monotonic() - started < 2.0
    assert result.verdict is Verdict.DELIVERED
    assert result.response == BIG_BODY[:RESPONSE_LIMIT].decode()


async def test_undecodable_bytes_are_replaced(deliverer: Deliverer, server: Server) -> None:
    result = await deliverer.attempt(f"{server.url}/binary", b"{}", WEBHOOK_HEADERS)
    assert result.verdict is Verdict.DELIVERED
    assert result.response == "ok \ufffd\ufffd end"


# --------------------------------------------------------------------------------- concurrency


async def test_per_endpoint_concurrency_is_capped_and_endpoints_are_independent(
    make_deliverer: MakeDeliverer, start_server: StartServer
) -> None:
    slow, other = await start_server(), await start_server()
    deliverer = make_deliverer(per_endpoint=2)
    attempts = [
        asyncio.create_task(deliverer.attempt(f"{slow.url}/gated", b"{}", WEBHOOK_HEADERS))
        for _ in range(6)
    ]
    await until(lambda: slow.in_flight == 2)
    await asyncio.sleep(0.1)  # room for a third request to (wrongly) get through
    assert slow.in_flight == 2
    assert len(slow.seen) == 2

    # Another endpoint does not queue behind the saturated one.
    result = await asyncio.wait_for(post_status(deliverer, other, 200), 2.0)
    assert result.verdict is Verdict.DELIVERED
    assert not any(attempt.done() for attempt in attempts)

    slow.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*attempts), 5.0)
    assert [r.verdict for r in results] == [Verdict.DELIVERED] * 6
    assert [r.http_status for r in results] == [202] * 6
    assert len(slow.seen) == 6
    assert slow.max_in_flight == 2


# --------------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (599, Verdict.RETRY),
        (410, Verdict.GONE),
        (304, Verdict.RETRY_LIMITED),
        (401, Verdict.RETRY_LIMITED),
        (451, Verdict.RETRY_LIMITED),
    ],
)
def test_classify_status(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("tomorrow", None),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 00:00:00 GMT", 0.0),
        ("Tue, 31 Dec 2024 23:00:00 GMT", 0.0),  # in the past
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_endpoint_key() -> None:
    assert endpoint_key("https://Hooks.Example.com/a?b=1") == ("https", "hooks.example.com", 443)
    assert endpoint_key("http://example.com/x") == ("http", "example.com", 80)
    assert endpoint_key("http://example.com:8080/x") == ("http", "example.com", 8080)
    assert endpoint_key("mailto:someone@example.com") is None


def test_constructor_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="per_endpoint"):
        Deliverer(per_endpoint=0)
