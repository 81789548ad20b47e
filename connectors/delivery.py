"""One HTTP delivery attempt of a webhook, and the classification of its outcome.

No Kafka and no retries here: the caller records every `AttemptResult` and schedules the next
attempt durably according to its `Verdict`. An attempt never raises for HTTP or network
problems; only programming errors (bad arguments, a closed `Deliverer`) propagate.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from connectors.ssrf import AddressGuard, GuardedResolver
from streams.aiohttp_transport import AiohttpTransport
from streams.http_headers import parse_retry_after

RESPONSE_LIMIT = 4096  # bytes of the response body kept (and read) per attempt
TOTAL_TIMEOUT_CLASS = "TotalTimeout"  # error_class when the overall bound of an attempt is hit
INVALID_URL_CLASS = "InvalidURL"
HTTP_STATUS_CLASS = "HTTPStatus"
DNS_ERROR_CLASS = "DNSError"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_RETRY_STATUSES = frozenset({408, 429})
_GONE_STATUS = 410


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # network error, timeout, 408, 429, 5xx
    RETRY_LIMITED = "retry_limited"  # 3xx (not followed), other 4xx: at most 3 tries
    GONE = "gone"  # 410: the endpoint must be disabled


@dataclass(frozen=True)
class AttemptResult:
    verdict: Verdict
    http_status: int | None
    latency_ms: float
    response: str | None  # body decoded with errors="replace", at most RESPONSE_LIMIT bytes
    error_class: str | None  # "ConnectError", "ReadTimeout", "HTTPStatus"...; None if delivered
    retry_after_s: float | None  # parsed Retry-After; None when absent or invalid


def classify_status(status: int) -> Verdict:
    """The verdict for a response status (redirects are never followed)."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == _GONE_STATUS:
        return Verdict.GONE
    if status in _RETRY_STATUSES or 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.RETRY_LIMITED


def endpoint_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the unit of per-endpoint concurrency."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parsed.host:
        return None
    return scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS[scheme]


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass
class _Received:
    status: int
    body: bytes
    retry_after_s: float | None
    encoding: str | None


class Deliverer:
    """Sends single webhook attempts over one pooled HTTP client."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        total_timeout_s: float = 15.0,
        per_endpoint: int = 10,
        max_connections: int = 200,
        guard: AddressGuard | None = None,
    ) -> None:
        """With `guard`, every address connected to is checked by it too (`GuardedResolver`)."""
        _check_positive(
            connect_timeout_s=connect_timeout_s,
            total_timeout_s=total_timeout_s,
            per_endpoint=per_endpoint,
            max_connections=max_connections,
        )
        self.total_timeout_s = total_timeout_s
        self.per_endpoint = per_endpoint
        self._gates: dict[tuple[str, str, int], _Gate] = {}
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(total_timeout_s, connect=connect_timeout_s),
            # aiohttp's pool, as for HTTP items (`streams.executors`): a POST to a local
            # receiver took ~1 ms through it against ~2-2.6 ms through httpcore's
            transport=AiohttpTransport(
                max_connections=max_connections,
                resolver=None if guard is None else GuardedResolver(guard),
            ),
            # Keep bodies plain so the bounded read needs no (unbounded) decompression.
            headers={"accept-encoding": "identity"},
        )

    async def attempt(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST `body` to `url` once and classify what happened."""
        key = endpoint_key(url)
        if key is None:
            return _failure(Verdict.RETRY_LIMITED, INVALID_URL_CLASS, 0.0)
        async with self._slot(key):
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.total_timeout_s):
                    received = await self._post(url, body, headers)
            except TimeoutError:
                return _failure(Verdict.RETRY, TOTAL_TIMEOUT_CLASS, _elapsed_ms(started))
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                return _failure(Verdict.RETRY_LIMITED, type(exc).__name__, _elapsed_ms(started))
            except httpx.HTTPError as exc:
                return _failure(Verdict.RETRY, type(exc).__name__, _elapsed_ms(started))
            return _from_response(received, _elapsed_ms(started))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Received:
        async with self._client.stream("POST", url, content=body, headers=dict(headers)) as resp:
            return _Received(
                status=resp.status_code,
                body=await _read_limited(resp, RESPONSE_LIMIT),
                retry_after_s=parse_retry_after(resp.headers.get("retry-after")),
                encoding=resp.charset_encoding,
            )

    @asynccontextmanager
    async def _slot(self, key: tuple[str, str, int]) -> AsyncIterator[None]:
        """Holds one of the endpoint's `per_endpoint` slots; idle endpoints are forgotten."""
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(asyncio.Semaphore(self.per_endpoint))
        gate.users += 1
        try:
            async with gate.semaphore:
                yield
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[key]


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body; stops reading (the connection is dropped) past it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _from_response(received: _Received, latency_ms: float) -> AttemptResult:
    verdict = classify_status(received.status)
    return AttemptResult(
        verdict=verdict,
        http_status=received.status,
        latency_ms=latency_ms,
        response=_decode(received.body, received.encoding),
        error_class=None if verdict is Verdict.DELIVERED else HTTP_STATUS_CLASS,
        retry_after_s=received.retry_after_s,
    )


def unresolved(reason: str) -> AttemptResult:
    """An attempt that could not start: the callback host's name did not resolve. Retried on
    the schedule like a network error (a DNS failure may pass)."""
    return AttemptResult(
        verdict=Verdict.RETRY,
        http_status=None,
        latency_ms=0.0,
        response=reason,
        error_class=DNS_ERROR_CLASS,
        retry_after_s=None,
    )


def _decode(body: bytes, encoding: str | None) -> str:
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset announced by the server
        return body.decode("utf-8", errors="replace")


def _failure(verdict: Verdict, error_class: str, latency_ms: float) -> AttemptResult:
    return AttemptResult(
        verdict=verdict,
        http_status=None,
        latency_ms=latency_ms,
        response=None,
        error_class=error_class,
        retry_after_s=None,
    )


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
