"""Run one normalised item: an action through its registered handler, or an HTTP call.

Both return an `Outcome`, never raise for a failure of the item itself (an unknown action, a
handler exception, a refused connection, a non-2xx answer...). Only cancellation propagates.

HTTP items go through one pooled `httpx.AsyncClient` per `HttpExecutor`, to the tenant's
configured base URL joined with the item's path. Retries (transport errors, 429, 5xx) are for
idempotent methods only, unless `retry_non_idempotent`; a connect failure (nothing was sent) is
retried for every method. Every request carries `Idempotency-Key: {batch_id}:{item_id}`.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import httpx

from streams import codec
from streams.aiohttp_transport import AiohttpTransport
from streams.codec import json_text
from streams.errors import SubmissionError
from streams.handlers import ActionContext, get_handler
from streams.http_headers import HOP_BY_HOP_HEADERS, parse_retry_after
from streams.validation import check_unicode, may_hold_surrogates

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

# Never forwarded from the batch's headers (nor taken from an item's): the client computes them.
DROPPED_HEADERS = HOP_BY_HOP_HEADERS | {"host", "content-length"}

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: an httpx timeout this close to the batch's deadline is the deadline's
DEADLINE_SLACK_S = 0.05


@dataclass(frozen=True)
class Outcome:
    """The result of running one item once (with its retries)."""

    success: bool
    status: str  # "succeeded" | "failed"
    code: int | None
    headers: dict[str, str] = field(default_factory=dict)
    output: Any = None
    errors: list[str] = field(default_factory=list)
    attempts: int = 1

    @classmethod
    def failed(
        cls,
        errors: list[str],
        *,
        attempts: int,
        code: int | None = None,
        headers: dict[str, str] | None = None,
        output: Any = None,
    ) -> Outcome:
        return cls(False, "failed", code, headers or {}, output, errors, attempts)


class ActionError(Exception):
    """Raised by a handler to fail its item with an explicit message and code."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------------------- actions


async def run_action(item: Mapping[str, Any], ctx: ActionContext) -> Outcome:
    """Run an action item with its registered handler.

    A sync handler is called directly in the event loop thread (it must be quick); an async
    one is awaited. Its return value must be JSON-able; it is stored as JSON would give it back.
    """
    namespace, name = item.get("namespace"), item.get("action")
    handler = get_handler(str(namespace), str(name))
    if handler is None:
        return Outcome.failed([f"unknown action {namespace}/{name}"], attempts=1)
    params: Any = item.get("params")
    try:
        result = handler(params, ctx)
        if inspect.isawaitable(result):
            result = await result
    except ActionError as exc:
        return Outcome.failed([exc.message], attempts=1, code=exc.code)
    except (Exception, SystemExit) as exc:  # a handler's sys.exit() must not end the worker
        logger.debug("action %s/%s raised", namespace, name, exc_info=True)
        return Outcome.failed([_describe_exception(exc)], attempts=1)
    try:
        output = _as_json_value(result)
    except (TypeError, ValueError) as exc:
        return Outcome.failed(
            [f"action {namespace}/{name} returned a value that is not JSON-serialisable: {exc}"],
            attempts=1,
        )
    return Outcome(True, "succeeded", None, {}, output, [], 1)


def _as_json_value(value: Any) -> Any:
    """`value`, or its JSON text when it is a container or a float (so it is stored as JSON
    gives it back: tuples become lists...); raises if it is not JSON-able."""
    if value is None or type(value) in (bool, int, str):
        return value
    return json_text(value)


def _describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------------------ http


@dataclass
class _Attempt:
    """One request's result: either an outcome from a response or a transport failure."""

    outcome: Outcome
    retryable: bool
    retry_after: float | None = None
    sent: bool = True


class HttpExecutor:
    """Runs HTTP items against the tenants' target base URLs through one pooled client."""

    def __init__(
        self,
        target_urls: Mapping[str, str],
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_base_s: float = 0.2,
        backoff_max_s: float = 10.0,
        retry_non_idempotent: bool = False,
        max_connections: int = 200,
        max_output_bytes: int = 1_000_000,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.target_urls = dict(target_urls)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_non_idempotent = retry_non_idempotent
        self.max_output_bytes = max_output_bytes
        self._client = httpx.AsyncClient(
            transport=AiohttpTransport(max_connections=max_connections),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(
        self,
        item: Mapping[str, Any],
        *,
        batch_id: str,
        tenant: str,
        batch_headers: Mapping[str, str],
        deadline_at: float,
    ) -> Outcome:
        """Send the item's request, retrying as configured, never past `deadline_at`."""
        try:
            request = self._build_request(item, batch_id, tenant, batch_headers)
        except _ItemRejected as exc:
            return Outcome.failed([str(exc)], attempts=0)
        method = request.method
        attempts = 0
        last: _Attempt | None = None
        while True:
            left = deadline_at - time.time()
            if left <= 0:
                return last.outcome if last else self._deadline_outcome(attempts, None)
            attempts += 1
            last = await self._attempt(request, left)
            last.outcome = replace(last.outcome, attempts=attempts)
            if attempts >= self.max_attempts or not self._may_retry(method, last):
                return last.outcome
            wait = self._wait_before_retry(attempts, last.retry_after)
            if time.time() + wait >= deadline_at:
                return last.outcome
            logger.debug(
                "retrying %s %s (attempt %d) in %.3fs: %s",
                method,
                request.url,
                attempts + 1,
                wait,
                last.outcome.errors,
            )
            await asyncio.sleep(wait)

    # -- request ----------------------------------------------------------------------------

    def _build_request(
        self,
        item: Mapping[str, Any],
        batch_id: str,
        tenant: str,
        batch_headers: Mapping[str, str],
    ) -> httpx.Request:
        base = self.target_urls.get(tenant)
        if not base:
            raise _ItemRejected(f"no target URL configured for tenant {tenant}")
        method, path = item.get("method"), item.get("path")
        if not isinstance(method, str) or not method:
            raise _ItemRejected("an HTTP item needs a method")
        url = _join_url(base, path)
        headers = merge_headers(batch_headers, item.get("headers"))
        content = _encode_body(item.get("body"), headers)
        _set_header(headers, IDEMPOTENCY_HEADER, f"{batch_id}:{item.get('id')}")
        try:
            return self._client.build_request(method.upper(), url, headers=headers, content=content)
        except (httpx.HTTPError, httpx.InvalidURL, TypeError, ValueError) as exc:
            raise _ItemRejected(f"invalid request: {_describe_exception(exc)}") from exc

    def _timeout(self, left: float) -> httpx.Timeout:
        return httpx.Timeout(
            connect=min(self.connect_timeout, left),
            read=min(self.read_timeout, left),
            write=min(self.read_timeout, left),
            pool=left,
        )

    async def _attempt(self, request: httpx.Request, left: float) -> _Attempt:
        timeout = self._timeout(left)
        request.extensions["timeout"] = timeout.as_dict()
        deadline = time.monotonic() + left
        try:
            return await asyncio.wait_for(self._send(request), timeout=left)
        except TimeoutError:
            return _Attempt(self._deadline_outcome(1, left), retryable=False)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            return _Attempt(_failed(_describe_exception(exc)), retryable=False)
        except httpx.TransportError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException)
            if timed_out and time.monotonic() >= deadline - DEADLINE_SLACK_S:
                # httpx's timeouts are cut to the deadline (`_timeout`): this one was it
                return _Attempt(self._deadline_outcome(1, left), retryable=False)
            message = _describe_transport_error(exc, timeout)
            return _Attempt(_failed(message), retryable=True, sent=not _never_sent(exc))
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
            return _Attempt(_failed(_describe_exception(exc)), retryable=False)

    async def _send(self, request: httpx.Request) -> _Attempt:
        response = await self._client.send(request, stream=True)
        try:
            body, truncated = await self._read_body(response)
        finally:
            await response.aclose()
        return self._response_attempt(response, body, truncated)

    async def _read_body(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_output_bytes:
                return b"".join(chunks)[: self.max_output_bytes], True
        return b"".join(chunks), False

    # -- response ---------------------------------------------------------------------------

    def _response_attempt(self, response: httpx.Response, body: bytes, truncated: bool) -> _Attempt:
        code = response.status_code
        headers = _response_headers(response)
        errors: list[str] = []
        output = _decode_output(body, response.charset_encoding, truncated)
        if truncated:
            errors.append(f"response body truncated at {self.max_output_bytes} bytes")
        success = 200 <= code < 300
        if not success:
            reason = response.reason_phrase or httpx.codes.get_reason_phrase(code)
            errors.insert(0, f"HTTP {code} {reason}".rstrip())
        outcome = Outcome(
            success, "succeeded" if success else "failed", code, headers, output, errors, 1
        )
        retryable = code == 429 or 500 <= code <= 599
        retry_after = parse_retry_after(headers.get("retry-after")) if retryable else None
        return _Attempt(outcome, retryable, retry_after)

    # -- retries ----------------------------------------------------------------------------

    def _may_retry(self, method: str, attempt: _Attempt) -> bool:
        if not attempt.retryable:
            return False
        # Nothing reached the target when the connection could not be made: always safe.
        return self.retry_non_idempotent or method in IDEMPOTENT_METHODS or not attempt.sent

    def _wait_before_retry(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s * 6)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempts - 1))
        return random.uniform(0, ceiling)

    def _deadline_outcome(self, attempts: int, left: float | None) -> Outcome:
        """The batch's deadline came first: the item timed out (`/v1/batch` answers 504)."""
        if left is None:
            message = "deadline reached before the request could be sent"
        else:
            message = f"deadline reached: no complete response within {left:.3f}s"
        return Outcome(False, "timed_out", None, {}, None, [message], attempts)


class _ItemRejected(Exception):
    """The item cannot be turned into a request; no request is made."""


def _failed(message: str) -> Outcome:
    return Outcome.failed([message], attempts=1)


def _never_sent(exc: httpx.TransportError) -> bool:
    """True when the request cannot have reached the target (no connection was made)."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _join_url(base: str, path: Any) -> httpx.URL:
    """`base` + `path`, refusing any path that would leave the base URL."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise _ItemRejected("an HTTP item's path must be a string starting with '/'")
    bare_path = path.split("?", 1)[0].split("#", 1)[0]
    if any(segment == ".." for segment in unquote(bare_path).split("/")):
        raise _ItemRejected(f"path {path!r} must not contain '..' segments")
    try:
        base_url = httpx.URL(base)
        url = httpx.URL(base.rstrip("/") + path)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise _ItemRejected(f"invalid URL for path {path!r}: {exc}") from exc
    if _origin(url) != _origin(base_url):
        raise _ItemRejected(f"path {path!r} leaves the tenant's target host")
    return url


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_ports = {"http": 80, "https": 443}
    return url.scheme, url.host, url.port or default_ports.get(url.scheme)


def merge_headers(
    batch_headers: Mapping[str, str] | None, item_headers: Mapping[str, str] | None
) -> dict[str, str]:
    """Batch headers, overridden case-insensitively by the item's, minus hop-by-hop ones.

    `Host`, `Content-Length`, the hop-by-hop headers and any header the batch's `Connection`
    header names are dropped from both sources.
    """
    merged: dict[str, str] = {}
    for source in (batch_headers or {}, item_headers or {}):
        dropped = DROPPED_HEADERS | _connection_tokens(source)
        for name, value in source.items():
            if name.lower() in dropped:
                continue
            _set_header(merged, name, str(value))
    return merged


def _connection_tokens(headers: Mapping[str, str]) -> frozenset[str]:
    tokens: set[str] = set()
    for name, value in headers.items():
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in str(value).split(",") if t.strip())
    return frozenset(tokens)


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def _has_header(headers: Mapping[str, str], name: str) -> bool:
    return any(k.lower() == name.lower() for k in headers)


def _encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    """The request content; sets a default Content-Type on `headers` when there is a body."""
    if body is None:
        return None
    if isinstance(body, str):
        if not _has_header(headers, "content-type"):
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode("utf-8")
    try:
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _ItemRejected(f"the item's body is not JSON-serialisable: {exc}") from exc
    if not _has_header(headers, "content-type"):
        headers["Content-Type"] = "application/json"
    return encoded.encode("utf-8")


def _response_headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _decode_output(body: bytes, charset: str | None, truncated: bool) -> Any:
    """Parsed JSON when the body is JSON, else its text; None for an empty body."""
    if not body:
        return None
    text = _text(body, charset, truncated)
    if truncated:
        return text
    try:
        value = codec.loads_strict(text)
        if may_hold_surrogates(body):
            check_unicode(value)  # a "\\ud800" escape is valid JSON but no UTF-8 text
    except (ValueError, RecursionError, SubmissionError):
        return text
    return value


def _text(body: bytes, charset: str | None, truncated: bool) -> str:
    """The body decoded with the response's charset, undecodable bytes replaced (so a binary
    body comes back lossy): UTF-8 when it names none, or one Python has but not as a text
    encoding that can replace (hex, zlib, idna...). A truncated body may end inside a
    character: that partial character is left out."""
    if charset:
        try:
            info = codecs.lookup(charset)
            if info._is_text_encoding:
                decoded: str = info.incrementaldecoder(errors="replace").decode(
                    body, final=not truncated
                )
                return decoded
        except (LookupError, UnicodeError):
            pass
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(body, final=not truncated)


def _describe_transport_error(exc: httpx.TransportError, timeout: httpx.Timeout) -> str:
    name = type(exc).__name__
    limits = {
        httpx.ConnectTimeout: ("connect", timeout.connect),
        httpx.ReadTimeout: ("read", timeout.read),
        httpx.WriteTimeout: ("write", timeout.write),
        httpx.PoolTimeout: ("pool", timeout.pool),
    }
    for kind, (label, seconds) in limits.items():
        if isinstance(exc, kind):
            return f"{name}: {label} timeout after {seconds:.3g}s"
    detail = str(exc) or repr(exc)
    return f"{name}: {detail}"
