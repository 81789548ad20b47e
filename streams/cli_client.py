"""The client side of the CLI: `submit FILE`, `status ID --watch`, `results ID`.

They talk to a worker's HTTP API (`--url`, `BATCHWIRE_API_URL`) with a tenant key (`--key`,
`BATCHWIRE_API_KEY`), or, for `submit --kafka`, straight to the topic.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import httpx
import ijson
from aiokafka.errors import KafkaConnectionError, KafkaError

from streams.client import BatchwireApiError, BatchwireClient, KafkaBatches, is_final
from streams.errors import BatchwireError
from streams.http_limits import MAX_BODY_BYTES

JSON_ERROR_REPARSE_BYTES = 64 * 1024 * 1024


class FileError(click.ClickException):
    """A submission file that cannot be read, with the line and column of the problem."""


def _json_error(path: Path, exc: Exception) -> FileError:
    """Name the line and column of a JSON error (the streaming parser cannot, so the file is
    parsed once more for the message; a file too large for that gets the parser's text)."""
    if path.stat().st_size <= JSON_ERROR_REPARSE_BYTES:
        try:
            json.loads(path.read_bytes())
        except json.JSONDecodeError as error:
            return FileError(f"{path}: line {error.lineno}, column {error.colno}: {error.msg}")
        except UnicodeDecodeError as error:
            return FileError(f"{path}: not UTF-8 ({error})")
    return FileError(f"{path}: {exc}")


def json_batch_fields(path: Path) -> dict[str, Any]:
    """The batch-level fields of a JSON batch file, without building its `items`."""
    fields: dict[str, Any] = {}
    key: str | None = None
    builder: Any = None
    with path.open("rb") as stream:
        try:
            for prefix, event, value in ijson.parse(stream, use_float=True):
                if prefix == "" and event == "start_array":
                    return {}  # a plain list of items
                if prefix == "" and event in ("map_key", "end_map"):
                    if builder is not None and key is not None:
                        fields[key] = builder.value
                    key = value if event == "map_key" else None
                    builder = ijson.ObjectBuilder() if key not in (None, "items") else None
                elif builder is not None:
                    builder.event(event, value)
        except ijson.JSONError as exc:
            raise _json_error(path, exc) from exc
    return fields


def json_batch_items(path: Path) -> Iterator[dict[str, Any]]:
    """The items of a JSON batch file (`{"items": [...]}` or `[...]`), one at a time."""
    with path.open("rb") as stream:
        first = stream.read(1 << 12).lstrip()[:1]
        stream.seek(0)
        if first not in (b"{", b"["):
            raise FileError(f"{path}: expected a batch object or a list of items")
        prefix = "item" if first == b"[" else "items.item"
        try:
            yield from ijson.items(stream, prefix, use_float=True)
        except ijson.JSONError as exc:
            raise _json_error(path, exc) from exc


def ndjson_items(path: Path) -> Iterator[dict[str, Any]]:
    """Items of an NDJSON file, one line at a time (the file is never read whole)."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                message = f"{path}: line {number}, column {exc.start + 1}: not UTF-8"
                raise FileError(message) from exc
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FileError(f"{path}: line {number}, column {exc.colno}: {exc.msg}") from exc
            yield item


def _is_ndjson(path: Path) -> bool:
    return path.suffix.lower() in {".ndjson", ".jsonl"}


async def submit_file(
    path: Path,
    *,
    url: str,
    key: str,
    tenant: str,
    batch_id: str | None,
    kafka: str | None,
    prefix: str,
) -> str:
    ndjson = _is_ndjson(path)
    fields = {} if ndjson else json_batch_fields(path)
    read_items = ndjson_items if ndjson else json_batch_items
    if batch_id:
        fields["batch_id"] = batch_id
    if kafka is not None:  # one message per part: the parts are built in memory here
        async with KafkaBatches(kafka, topic_prefix=prefix) as topic:
            return await topic.submit({**fields, "tenant": tenant, "items": list(read_items(path))})
    callback = fields.get("callback") or {}
    async with BatchwireClient(url, key) as client:
        if _fields_too_long_for_a_url(fields, path):
            # metadata or headers that the NDJSON route's query string cannot carry (the
            # server refuses request lines over 16 KB): the JSON route, the file held whole
            answer = await client.submit(tenant, {**fields, "items": list(read_items(path))})
            return str(answer["batch_id"])
        # both kinds of file go as NDJSON: read and sent item by item, never held whole
        try:
            answer = await client.submit_ndjson(
                tenant,
                lambda: read_items(path),  # read again for another try after a 503
                batch_id=fields.get("batch_id"),
                callback_url=callback.get("url"),
                callback_mode=callback.get("mode"),
                metadata=fields.get("metadata"),
                deadline_s=fields.get("deadline_s"),
                stop_on_failure=fields.get("stop_on_failure"),
                headers=fields.get("headers"),
            )
        except BatchwireApiError as exc:
            if not ndjson:  # the server counted lines of NDJSON; the user wrote `items`
                exc.details = [_item_path(detail) for detail in exc.details]
            raise
    return str(answer["batch_id"])


#: batch fields longer than this, in JSON, go in a JSON body rather than in a query string
MAX_QUERY_FIELDS = 4096


def _fields_too_long_for_a_url(fields: dict[str, Any], path: Path) -> bool:
    """Whether the batch fields would not fit in a URL, and the file fits in a JSON body."""
    size = len(json.dumps([fields.get("metadata"), fields.get("headers")]))
    return size > MAX_QUERY_FIELDS and path.stat().st_size < MAX_BODY_BYTES // 2


def _item_path(detail: dict[str, Any]) -> dict[str, Any]:
    """`line 2: $.method` of the NDJSON sent -> `$.items[1].method` of the JSON file."""
    line, _, rest = str(detail.get("path", "")).partition(": ")
    number = line.removeprefix("line ")
    if not (line.startswith("line ") and number.isdigit()):
        return detail
    return {**detail, "path": f"$.items[{int(number) - 1}]{rest.removeprefix('$')}"}


def progress_line(status: dict[str, Any], rate: float) -> str:
    """`[#####-----] 500/1000 50%  120 items/s  ETA 4s  failed 3  in_progress`"""
    c = status["counters"]
    done, total = c["processed"], max(c["posted"], 1)
    width = 30
    bar = "#" * int(width * done / total) + "-" * (width - int(width * done / total))
    left = total - done
    eta = f"ETA {left / rate:.0f}s" if rate > 0 and left > 0 else "ETA -"
    failures = c["failed"] + c["skipped"] + c.get("cancelled", 0) + c.get("timed_out", 0)
    return (
        f"[{bar}] {done}/{c['posted']} {100 * done / total:3.0f}%  {rate:6.0f} items/s  "
        f"{eta}  failed {failures}  {status['status']}"
    )


async def watch_status(
    batch_id: str, *, url: str, key: str, tenant: str | None, watch: bool, out: IO[str]
) -> dict[str, Any]:
    async with BatchwireClient(url, key) as client:
        if not watch:
            return await client.status(batch_id, tenant)
        status = await _first_status(client, batch_id, tenant)
        first, first_done = time.monotonic(), status["counters"]["processed"]
        while True:
            elapsed = time.monotonic() - first
            rate = (status["counters"]["processed"] - first_done) / elapsed if elapsed > 0 else 0.0
            out.write("\r" + progress_line(status, rate))
            out.flush()
            if is_final(status):
                out.write("\n")
                return status
            await asyncio.sleep(0.5)
            status = await client.status(batch_id, tenant)


#: a batch submitted a moment ago may not be known yet (README: status answers 404 until
#: the aggregator has heard of it, milliseconds after an HTTP submit, longer after a
#: submission on the topic); `--watch` waits this long for it
WATCH_NOT_FOUND_S = 10.0


async def _first_status(
    client: BatchwireClient, batch_id: str, tenant: str | None
) -> dict[str, Any]:
    deadline = time.monotonic() + WATCH_NOT_FOUND_S
    while True:
        try:
            return await client.status(batch_id, tenant)
        except BatchwireApiError as exc:
            if exc.code != "not_found" or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.2)


CSV_FIELDS = ("index", "item_id", "status", "success", "code", "attempts", "errors", "output")


async def write_results(
    batch_id: str,
    *,
    url: str,
    key: str,
    tenant: str | None,
    fmt: str,
    status: str | None,
    out: IO[str],
) -> int:
    count = 0
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async with BatchwireClient(url, key) as client:
        async for result in client.results(batch_id, status=status, tenant=tenant):
            if writer is not None:
                writer.writerow(
                    {
                        **result,
                        "errors": "; ".join(result["errors"]),
                        "output": json.dumps(result["output"], ensure_ascii=False),
                    }
                )
            else:
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            count += 1
    return count


async def cancel_batch(batch_id: str, *, url: str, key: str, tenant: str | None) -> Any:
    async with BatchwireClient(url, key) as client:
        return await client.cancel(batch_id, tenant=tenant)


def run(coroutine: Any, url: str) -> Any:
    """Run a client coroutine, turning the usual failures into one clear line (aiokafka's
    own log of a broker it cannot reach is left out: that line says it)."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coroutine)
    except BatchwireApiError as exc:
        if exc.code == "not_found":
            raise click.ClickException(
                f"{exc.message} (unknown batch, or another tenant's)"
            ) from exc
        raise click.ClickException(
            f"{exc.status} {exc.code}: {exc.message} {exc.details or ''}"
        ) from exc
    except httpx.ConnectError as exc:
        raise click.ClickException(
            f"cannot reach batchwire at {url}: is a worker running?"
        ) from exc
    except KafkaConnectionError as exc:
        raise click.ClickException(f"cannot reach Kafka: {exc}") from exc
    except httpx.HTTPError as exc:  # an answer that is not the API's, a timeout...
        raise click.ClickException(f"talking to batchwire at {url}: {exc!r}") from exc
    except (KafkaError, BatchwireError) as exc:  # a part too big, a part refused by Kafka
        raise click.ClickException(str(exc) or repr(exc)) from exc
