"""The client side of the CLI: `submit FILE`, `status ID --watch`, `results ID`.

They talk to a worker's HTTP API (`--url`, `BATCHWIRE_API_URL`) with a tenant key (`--key`,
`BATCHWIRE_API_KEY`), or, for `submit --kafka`, straight to the topic.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import httpx
from aiokafka.errors import KafkaConnectionError

from streams.client import BatchwireApiError, BatchwireClient, KafkaBatches, is_final


class FileError(click.ClickException):
    """A submission file that cannot be read, with the line and column of the problem."""


def read_json_batch(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if isinstance(value, list):
        return {"items": value}
    if not isinstance(value, dict):
        raise FileError(f"{path}: expected a batch object or a list of items")
    return value


def ndjson_items(path: Path) -> Iterator[dict[str, Any]]:
    """Items of an NDJSON file, one line at a time (the file is never read whole)."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
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
    if kafka is not None:
        batch = {"items": list(ndjson_items(path))} if _is_ndjson(path) else read_json_batch(path)
        batch = {**batch, "tenant": tenant, **({"batch_id": batch_id} if batch_id else {})}
        async with KafkaBatches(kafka, topic_prefix=prefix) as topic:
            return await topic.submit(batch)
    async with BatchwireClient(url, key) as client:
        if _is_ndjson(path):
            answer = await client.submit_ndjson(tenant, ndjson_items(path), batch_id=batch_id)
        else:
            batch = read_json_batch(path)
            answer = await client.submit(
                tenant, {**batch, **({"batch_id": batch_id} if batch_id else {})}
            )
    return str(answer["batch_id"])


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
    batch_id: str, *, url: str, key: str, watch: bool, out: IO[str]
) -> dict[str, Any]:
    async with BatchwireClient(url, key) as client:
        status = await client.status(batch_id)
        if not watch:
            return status
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
            status = await client.status(batch_id)


CSV_FIELDS = ("index", "item_id", "status", "success", "code", "attempts", "errors", "output")


async def write_results(
    batch_id: str, *, url: str, key: str, fmt: str, status: str | None, out: IO[str]
) -> int:
    count = 0
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async with BatchwireClient(url, key) as client:
        async for result in client.results(batch_id, status=status):
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


def run(coroutine: Any, url: str) -> Any:
    """Run a client coroutine, turning the usual failures into one clear line."""
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
