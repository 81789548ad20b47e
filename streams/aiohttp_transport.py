"""An httpx transport that sends through aiohttp's connection pool.

The item processors send many HTTP items at once through one client. httpcore's pool
(under `httpx.AsyncClient`) matches queued requests to connections in O(connections x
requests) each time a request starts or ends (encode/httpx#3215; the fix,
encode/httpcore#1035, is not merged). With 64 items at once against a local target that
answers at once, a worker managed ~120 items/s. aiohttp's pool has no such cost, and aiohttp
is here anyway (faust's web server). The executor keeps httpx's requests, responses and
exception classes: this module maps aiohttp's errors onto httpx's, so retries and error
messages do not change.

The body is passed through undecoded (`auto_decompress=False`): httpx decodes it as it does
for its own transport. No cookies are kept and no redirect is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver

READ_CHUNK = 64 * 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, resolver: AbstractResolver | None = None) -> None:
        """`resolver` resolves host names when connecting (aiohttp's default without one)."""
        self.max_connections = max_connections
        self.resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running loop (aiohttp binds a session to it)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, limit_per_host=0, resolver=self.resolver
                ),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        with _httpx_errors(request):
            response = await self._get_session().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # as httpx built it, not requoted
                headers=[
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=_plus(timeout.get("pool"), timeout.get("connect")),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response, request),
            extensions={
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
                "http_version": b"HTTP/1.1",
            },
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for chunk in self._response.content.iter_chunked(READ_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


@contextlib.contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Raise aiohttp's failures as httpx's exceptions (others pass unchanged)."""
    try:
        yield
    except Exception as exc:
        mapped = _as_httpx(exc, request)
        if mapped is None:
            raise
        raise mapped from exc


def _as_httpx(exc: Exception, request: httpx.Request) -> httpx.TransportError | None:
    """httpx's exception for an aiohttp failure (the executor's retry rules use them)."""
    message = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # a pool slot or the connect
        kind = httpx.ConnectTimeout
    elif isinstance(exc, (aiohttp.SocketTimeoutError, asyncio.TimeoutError)):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, (aiohttp.ClientError, OSError)):
        kind = httpx.ReadError
    else:
        return None
    return kind(message, request=request)
