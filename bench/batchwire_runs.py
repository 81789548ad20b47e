"""Scenarios (a)-(e) against real batchwire processes on the bench's broker.

Every batch is submitted on `batchwire.batches` with the project's own client
(`streams.client.KafkaBatches`, which splits it into parts) and timed from just before the
submission to the moment its final `BatchStatus` is read (or its callback arrives).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import hops, payloads
from bench.local_http import CallbackReceiver
from bench.profiles import LATENCY_WARM_UP
from bench.services import batchwire_worker, memory_kib, worker_env
from bench.stats import latency_summary, rate
from bench.status_watch import StatusWatcher, watch_statuses
from streams.client import KafkaBatches
from streams.localkafka.broker import free_port

#: batches submitted at once in (b): enough to keep the producer's batches full
SUBMIT_WINDOW = 100


@dataclass
class Pipeline:
    """A running worker's topics, as the scenarios reach them."""

    client: KafkaBatches
    watcher: StatusWatcher
    receiver: CallbackReceiver | None = None


def new_prefix(label: str) -> str:
    """A topic prefix of its own per worker, so no run sees another's topics or state."""
    return f"bench{uuid.uuid4().hex[:6]}.{label}."


def _outcome(items: int, seconds: float, finals: dict[str, Any], batches: int) -> dict[str, Any]:
    processed = sum(f.counters.get("processed", 0) for f in finals.values())
    succeeded = sum(f.counters.get("succeeded", 0) for f in finals.values())
    return {
        "items": items,
        "batches": batches,
        "ended": len(finals),
        "processed": processed,
        "succeeded": succeeded,
        "seconds": seconds,
        "items_per_s": rate(processed, seconds) if len(finals) == batches else float("nan"),
    }


async def one_batch(
    pipe: Pipeline, items: list[dict[str, Any]], *, label: str, time_limit_s: float
) -> dict[str, Any]:
    """(a) and (d): one batch, submit to final status."""
    batch_id = payloads.new_batch_id(label)
    body = payloads.batch(batch_id, items)
    started = time.monotonic()
    await pipe.client.submit(body)
    finals = await pipe.watcher.wait([batch_id], time_limit_s)
    seconds = (finals[batch_id].at if finals else time.monotonic()) - started
    return _outcome(len(items), seconds, finals, 1)


async def many_batches(
    pipe: Pipeline, batches: int, items: int, *, time_limit_s: float
) -> dict[str, Any]:
    """(b): `batches` batches of `items` no-op items submitted together, to the last final
    status."""
    ids = [payloads.new_batch_id("many") for _ in range(batches)]
    bodies = [payloads.batch(b, payloads.noop_items(items)) for b in ids]
    started = time.monotonic()
    for window in range(0, batches, SUBMIT_WINDOW):
        await asyncio.gather(
            *(pipe.client.submit(body) for body in bodies[window : window + SUBMIT_WINDOW])
        )
    finals = await pipe.watcher.wait(ids, time_limit_s)
    seconds = (max(f.at for f in finals.values()) if finals else time.monotonic()) - started
    return _outcome(batches * items, seconds, finals, batches)


async def callback_latency(
    pipe: Pipeline, batches: int, items: int, *, time_limit_s: float
) -> dict[str, Any]:
    """(c): batches of `items` no-op items, one at a time, callback mode `batch` through the
    webhook connector; `LATENCY_WARM_UP` batches first (not counted); and where their time went,
    hop by hop (`bench.hops`)."""
    receiver = pipe.receiver
    assert receiver is not None, "callback latency needs the webhook receiver"
    client = pipe.client
    marks = await hops.mark(client.bootstrap, client.topic_prefix)
    timed: list[str] = []
    to_callback: list[float] = []
    to_status: list[float] = []
    deadline = time.monotonic() + time_limit_s
    for n in range(batches + LATENCY_WARM_UP):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        batch_id = payloads.new_batch_id("latency")
        body = payloads.batch(batch_id, payloads.noop_items(items), callback_url=receiver.url)
        started = time.monotonic()
        await pipe.client.submit(body)
        finals = await pipe.watcher.wait([batch_id], remaining)
        try:
            arrived = await receiver.wait(batch_id, max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            break
        if n < LATENCY_WARM_UP:
            continue
        if batch_id in finals:
            to_status.append(finals[batch_id].at - started)
        to_callback.append(arrived - started)
        timed.append(batch_id)
    return {
        "batches": len(to_callback),
        "items_per_batch": items,
        "submit_to_callback": latency_summary(to_callback),
        "submit_to_status": latency_summary(to_status),
        "hops": await hops.summary(client.bootstrap, marks, timed),
    }


async def peak_rss(
    bootstrap: str,
    workdir: Path,
    size: int,
    *,
    time_limit_s: float,
    worker_flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """(e): a fresh worker runs one batch of `size` no-op items; its resident set at ready
    and its peak (`VmHWM`) once the batch has ended (with its item processes', if any)."""
    prefix = new_prefix(f"rss{size}")
    env = worker_env(
        bootstrap=bootstrap,
        prefix=prefix,
        data_dir=workdir / f"rss-{size}-data",
        web_port=free_port(),
    )
    log_path = workdir / f"worker-rss-{size}.log"
    with batchwire_worker(env, log_path, flags=worker_flags) as worker:
        at_ready = memory_kib(worker.pid)
        async with (
            KafkaBatches(bootstrap, topic_prefix=prefix) as client,
            watch_statuses(
                bootstrap, f"{prefix}batchwire.status", check=worker.check_alive
            ) as watcher,
        ):
            run = await one_batch(
                Pipeline(client, watcher),
                payloads.noop_items(size),
                label=f"rss{size}",
                time_limit_s=time_limit_s,
            )
        at_end = memory_kib(worker.pid)
    return {
        **run,
        "rss_at_ready_mib": at_ready.get("VmRSS", 0) / 1024,
        "rss_at_end_mib": at_end.get("VmRSS", 0) / 1024,
        "peak_rss_mib": at_end.get("VmHWM", 0) / 1024,
    }
