"""Size limits of one request to the HTTP API, in one place.

aiohttp's parser enforces the URL and header limits (`server_options()`, given to the app in
`streams.app`), and `streams.api.protocol` turns its refusals into contract errors: 414 for
the URL, 431 for the headers.  The body limits are checked by the views while they read
(`streams.api.views.ApiView.read_json`, `streams.api.ndjson.body_lines`): 413
`too_many_items`.
"""

from __future__ import annotations

from typing import Any

#: the request target (path and query string): 16 KiB, about twice aiohttp's default of
#: 8,190 bytes, because an NDJSON submission carries its batch fields (`metadata`, `headers`
#: as JSON) in the query.  It must differ from `MAX_HEADER_BYTES`: aiohttp's `LineTooLong`
#: tells which of the two limits was passed only by the number.
MAX_URL_BYTES = 16_384
#: one header field's value (aiohttp's default, like Apache's and nginx's 8 KiB lines; with
#: aiohttp's pure-Python parser, the whole `name: value` line)
MAX_HEADER_BYTES = 8_190
#: header fields per request (aiohttp's default)
MAX_HEADERS = 128
#: a JSON body, declared (`Content-Length`) or streamed (aiohttp's `client_max_size`)
MAX_BODY_BYTES = 64 * 1024 * 1024
#: what an NDJSON body may hold per item of `BATCHWIRE_MAX_ITEMS`, on average.  No per-item
#: cap exists elsewhere (an item only has to fit in one Kafka message); 2 KiB is several
#: times a typical HTTP or action item (~50-300 bytes), and bounds a batch of the default
#: 1,000,000 items at 2,048,000,000 bytes of temporary file and of Kafka parts.
NDJSON_BYTES_PER_ITEM = 2_048


def ndjson_max_bytes(max_items: int) -> int:
    """The NDJSON body limit: `NDJSON_BYTES_PER_ITEM` per item the batch may hold, and never
    less than a JSON body may be (a small `BATCHWIRE_MAX_ITEMS` must not refuse big items)."""
    return max(MAX_BODY_BYTES, max_items * NDJSON_BYTES_PER_ITEM)


def server_options() -> dict[str, Any]:
    """aiohttp `Application` options (faust's `web_application_options`)."""
    return {
        "client_max_size": MAX_BODY_BYTES,
        "handler_args": {
            "max_line_size": MAX_URL_BYTES,
            "max_field_size": MAX_HEADER_BYTES,
            "max_headers": MAX_HEADERS,
        },
    }
