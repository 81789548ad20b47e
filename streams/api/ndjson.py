"""Submitting a batch as `application/x-ndjson`: one item per line, streamed into parts.

The body is never held whole: lines are validated part by part (each part under Kafka's
default message size) and spooled to a temporary file; the parts are published once the
whole body has been read and found valid, since every part carries the total `parts`.
A body over `streams.http_limits.ndjson_max_bytes` is refused (413 `too_many_items`) as
soon as that many bytes arrived, or at once when its `Content-Length` says so.
Batch-level fields come from the query string: `batch_id`, `callback_url`, `callback_mode`,
`stop_on_failure`, `deadline_s`, and `metadata` and `headers` (JSON).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import IO, Any

from streams import codec
from streams.api.errors import ApiError, body_too_large
from streams.api.submit import publish_new
from streams.app import settings
from streams.errors import SubmissionError
from streams.http_limits import ndjson_max_bytes
from streams.parts import MAX_PART_BYTES, PART_BYTES, check_part_size
from streams.validation import (
    MAX_JSON_DEPTH,
    check_depth,
    check_unicode,
    content_hash,
    may_hold_surrogates,
    validate_submission,
)

_FALSE = {"false", "0", "no"}


def batch_fields(query: Any, tenant: str) -> dict[str, Any]:
    """The batch-level fields of an NDJSON submission, from its query string."""
    fields: dict[str, Any] = {
        "tenant": tenant,
        "batch_id": query.get("batch_id") or uuid.uuid4().hex,
    }
    if query.get("callback_url"):
        fields["callback"] = {
            "url": query["callback_url"],
            "mode": query.get("callback_mode") or "batch",
        }
    if query.get("stop_on_failure") is not None:
        fields["stop_on_failure"] = query["stop_on_failure"].lower() not in _FALSE
    try:
        if query.get("deadline_s") is not None:
            fields["deadline_s"] = float(query["deadline_s"])
        if query.get("metadata") is not None:
            fields["metadata"] = codec.loads_strict(query["metadata"])
            check_depth(fields["metadata"], path="metadata", level=2)
            check_unicode(fields["metadata"], path="metadata")
        if query.get("headers") is not None:
            fields["headers"] = codec.loads_strict(query["headers"])
            check_depth(fields["headers"], path="headers", level=2)
            check_unicode(fields["headers"], path="headers")
    except SubmissionError as exc:
        raise ApiError.of(exc) from exc
    except (ValueError, RecursionError) as exc:
        raise ApiError("invalid_batch_format", f"bad query parameter: {exc}") from exc
    return fields


class PartSpool:
    """Validates items a part at a time and spools the parts' JSON to a temporary file."""

    def __init__(self, fields: dict[str, Any], file: IO[bytes]) -> None:
        self.fields = fields
        self.file = file
        self.written = 0  # parts spooled so far
        self.items: list[Any] = []
        self.size = 0
        self.count = 0
        self.ids: set[str] = set()

    def add(self, item: Any) -> None:
        line = json.dumps(item, ensure_ascii=False).encode()
        if self.items and self.size + len(line) > PART_BYTES:
            self.flush()
        self.items.append(item)
        self.size += len(line) + 1

    def flush(self) -> None:
        if not self.items:
            return
        number = self.written
        part = {**self.fields, "items": self.items, "part": number, "parts": 0}
        try:
            sub = validate_submission(
                {**part, "parts": number + 1},
                allowed_tenants=settings.allowed_tenants,
                max_items=settings.max_items,
                first_index=self.count,
            )
            # encoded as `parts()` will send it, once its total (at most `max_items`, here 0)
            # is known
            encoded = json.dumps(part).encode()
            most = len(encoded) - len("0") + len(str(settings.max_items))
            check_part_size(most, f"line {self.count + 1}")
        except SubmissionError as exc:
            for detail in exc.details:  # point at the body's line, not the part's index
                detail["path"] = _line_path(detail.get("path"), self.count)
            raise ApiError.of(exc) from exc
        for item in sub.items:
            if item["id"] in self.ids:
                raise ApiError(
                    "duplicate_item_id",
                    f"item id {item['id']!r} appears twice",
                    [{"path": f"line {item['index'] + 1}", "message": "duplicate id"}],
                )
            self.ids.add(item["id"])
        self.count += len(self.items)
        self.file.write(encoded + b"\n")
        self.written += 1
        self.items, self.size = [], 0

    def parts(self) -> Iterator[bytes]:
        """The parts with their total filled in (the hashes are computed the same way)."""
        for part in self._read():
            yield json.dumps(part).encode()

    def hashes(self) -> dict[str, str]:
        return {str(part["part"]): content_hash(part) for part in self._read()}

    def _read(self) -> Iterator[dict[str, Any]]:
        self.file.seek(0)
        for line in self.file:
            part = json.loads(line)
            part["parts"] = self.written
            yield part


def _line_path(path: Any, first_index: int) -> str:
    """`$.items[3].method` of a part -> `line 7: $.method` of the body."""
    if not isinstance(path, str) or not path.startswith("$.items["):
        return str(path)
    index, _, rest = path[len("$.items[") :].partition("]")
    return f"line {first_index + int(index) + 1}: ${rest}"


CHUNK_BYTES = 1 << 16


def body_lines(request: Any) -> AsyncIterator[bytes]:
    """The lines of an NDJSON request body as they arrive, within the byte limit."""
    limit = ndjson_max_bytes(settings.max_items)
    length = request.content_length
    if length is not None and length > limit:
        raise body_too_large(limit)
    return lines_of(capped(request.content.iter_chunked(CHUNK_BYTES), limit))


async def capped(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    """The chunks, until more than `limit` bytes came: then the contract's 413, and nothing
    more is read (aiohttp drains what is in flight, for at most its lingering time, so the
    client can read the answer)."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise body_too_large(limit)
        yield chunk


async def lines_of(
    chunks: AsyncIterable[bytes], max_line: int = MAX_PART_BYTES
) -> AsyncIterator[bytes]:
    """Split a byte stream into lines, in time linear in the bytes (a line that spans many
    chunks is appended to, never copied again). A line over `max_line` bytes is the
    contract's 413 as soon as it gets there: one item must fit in one Kafka message, and
    reading on would hold up to the whole body in memory for nothing."""
    line = bytearray()
    number = 1

    def check(size: int) -> None:
        if size > max_line:
            message = f"line {number} is over {max_line} bytes: an item must fit in a message"
            raise ApiError("too_many_items", message, [{"path": f"line {number}"}])

    async for chunk in chunks:
        first, *rest = chunk.split(b"\n")
        line += first
        check(len(line))
        if rest:
            yield bytes(line)
            *whole, tail = rest
            for each in whole:
                number += 1
                check(len(each))
                yield each
            number += 1
            line = bytearray(tail)
            check(len(line))
    if line:
        yield bytes(line)


async def submit_ndjson(
    tenant: str,
    lines: AsyncIterable[bytes],
    query: Any,
    authorization: str,
) -> dict[str, Any]:
    fields = batch_fields(query, tenant)
    with tempfile.TemporaryFile() as file:
        spool = PartSpool(fields, file)
        number = 0
        async for raw in lines:
            number += 1
            if not raw.strip():
                continue
            try:
                # a str, not bytes: json.loads(bytes) would let surrogates in
                item = codec.loads_strict(raw.decode("utf-8"))
                check_depth(item, path=f"line {number}", level=3)
                if may_hold_surrogates(raw):
                    check_unicode(item, path=f"line {number}")
            except SubmissionError as exc:
                raise ApiError.of(exc) from exc
            except RecursionError as exc:
                message = f"line {number}: JSON nested deeper than {MAX_JSON_DEPTH} levels"
                raise ApiError(
                    "invalid_batch_format", message, [{"path": f"line {number}"}]
                ) from exc
            except ValueError as exc:
                raise ApiError(
                    "invalid_json",
                    f"line {number} is not JSON: {exc}",
                    [{"path": f"line {number}", "message": str(exc)}],
                ) from exc
            spool.add(item)
            if spool.count + len(spool.items) > settings.max_items:
                raise ApiError("too_many_items", f"more than {settings.max_items} items")
        spool.flush()
        if spool.count == 0:
            raise ApiError("empty_batch", "the body holds no item")
        return await publish_new(
            tenant, fields["batch_id"], spool.hashes(), spool.parts(), authorization
        )
