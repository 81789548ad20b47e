"""Requests that aiohttp's HTTP parser refuses before any view sees them, answered with the
contract's error body instead of aiohttp's plain text.

- a URL over `MAX_URL_BYTES`: 414 URI Too Long, `invalid_batch_format`;
- a header field over `MAX_HEADER_BYTES`, or more than `MAX_HEADERS` fields: 431 Request
  Header Fields Too Large, `invalid_batch_format`;
- anything else that is not HTTP/1.1 (a bad request line, a header without a colon, a bad
  chunked encoding): 400, `invalid_json` (the contract's code for what cannot be parsed).

aiohttp answers these from `RequestHandler.handle_error`, below the application: no
middleware or view runs, and neither aiohttp nor faust lets an application choose the
handler class.  `install_parse_error_answers` therefore wraps that one method; every other
error (a handler that raised: 500, a timeout: 504) keeps aiohttp's answer. It also adds
`route_errors`, which answers a path without a route (404) and a method its route does not
take (405) with the contract's body, code `not_found`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from streams.api.errors import ApiError
from streams.http_limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_URL_BYTES
from streams.validation import MAX_QUOTE

log = logging.getLogger(__name__)

_aiohttp_handle_error = web.RequestHandler.handle_error
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(exc: HttpProcessingError) -> tuple[int, ApiError]:
    """The HTTP status and contract error for a request the parser refused with `exc`."""
    if isinstance(exc, LineTooLong) and exc.args[1:2] == (MAX_URL_BYTES,):
        return 414, _too_long("url", f"the URL is longer than {MAX_URL_BYTES} bytes")
    if isinstance(exc, LineTooLong):
        return 431, _too_long("headers", f"a header field is longer than {MAX_HEADER_BYTES} bytes")
    if exc.message.startswith("Too many headers"):
        return 431, _too_long("headers", f"more than {MAX_HEADERS} header fields")
    reason = exc.message if len(exc.message) <= MAX_QUOTE else exc.message[: MAX_QUOTE - 1] + "…"
    return 400, ApiError("invalid_json", f"not a valid HTTP/1.1 request: {reason}")


def _too_long(path: str, message: str) -> ApiError:
    return ApiError("invalid_batch_format", message, [{"path": path, "message": message}])


def _handle_error(
    self: web.RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """`RequestHandler.handle_error`, with the contract's body for a request not parsed."""
    if status != 400 or not isinstance(exc, HttpProcessingError):
        return _aiohttp_handle_error(self, request, status, exc, message)
    if request.writer.output_size > 0:  # as aiohttp: an answer was started, none can follow
        raise ConnectionError("an answer was sent already")
    code, error = refusal(exc)
    # not `exc`: it quotes the request's bytes, which may hold a tenant key
    log.debug("refused a request from %s: %d, %s", request.remote, code, type(exc).__name__)
    response = web.json_response(error.body(), status=code)
    response.force_close()
    return response


@web.middleware
async def route_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A path no route has (404) or a method its route does not take (405, with `Allow`),
    answered with the contract's body (`not_found`) instead of aiohttp's plain text."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = ApiError("not_found", f"{request.method} is not a method of this route: {allowed}")
        return web.json_response(error.body(), status=405, headers={"Allow": allowed})
    except web.HTTPNotFound:
        return web.json_response(ApiError("not_found", "no such route").body(), status=404)


def install_parse_error_answers(application: web.Application) -> None:
    """Make every aiohttp server of this process answer unparsable requests, and
    `application` requests for no route, with the contract's body (the worker calls it
    before it starts its web server)."""
    web.RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
    application.middlewares.append(route_errors)
