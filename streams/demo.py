"""`batchwire demo`: a local broker, a worker and sample batches, with their progress.

Everything runs on 127.0.0.1 and stops on Ctrl-C (or, with `--exit-when-done`, once every
sample batch has ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams import codec
from streams.aggregation import FINAL_STATUSES
from streams.localkafka import LocalBroker
from streams.localkafka.broker import cache_root, free_port

TENANT = "demo"


def sample_batches(run: str) -> list[dict[str, Any]]:
    """Batches in the shapes of the contract's batch APIs, all run by built-in actions."""
    return [
        {
            "batch_id": f"{run}-jobs",
            "tenant": TENANT,
            "metadata": {"asyncId": f"{run}-jobs"},
            "items": [
                {"id": f"job{i}", "namespace": "batchwire", "action": "echo", "params": {"n": i}}
                for i in range(2000)
            ],
        },
        {
            "batch_id": f"{run}-groups",
            "tenant": TENANT,
            "items": [
                {
                    "namespace": "batchwire",
                    "action": "noop",
                    "params": {"i": i},
                    "group": f"t{i % 20}",
                }
                for i in range(3000)
            ],
        },
        {
            "batch_id": f"{run}-staged",
            "tenant": TENANT,
            "items": [
                {
                    "id": f"{kind}{i}",
                    "namespace": "batchwire",
                    "action": "echo",
                    "params": {"kind": kind},
                    "stage": stage,
                }
                for stage, kind in enumerate(("customer", "order", "invoice"))
                for i in range(200)
            ],
        },
        {
            "batch_id": f"{run}-with-errors",
            "tenant": TENANT,
            "items": [
                {"id": "ok", "namespace": "batchwire", "action": "echo", "params": {"x": 1}},
                {"id": "unknown", "namespace": "nope", "action": "missing", "params": {"x": 1}},
            ],
        },
    ]


def _progress_line(status: dict[str, Any], started: float) -> str:
    c = status["counters"]
    rate = c["processed"] / max(time.monotonic() - started, 1e-3)
    return (
        f"  {status['batch_id']:<28} {status['status']:<22} "
        f"{c['processed']:>6}/{c['posted']:<6} ok {c['succeeded']:<6} failed {c['failed']:<4} "
        f"skipped {c['skipped']:<4} {rate:8.0f} items/s"
    )


async def _run_batches(bootstrap: str, prefix: str, run: str) -> dict[str, dict[str, Any]]:
    batches = sample_batches(run)
    consumer = AIOKafkaConsumer(
        f"{prefix}batchwire.status", bootstrap_servers=bootstrap, auto_offset_reset="latest"
    )
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=10 * 1024 * 1024)
    await producer.start()
    started = time.monotonic()
    try:
        for batch in batches:
            await producer.send_and_wait(
                f"{prefix}batchwire.batches", json.dumps(batch).encode(), key=TENANT.encode()
            )
        click.echo(f"submitted {len(batches)} batches; progress:")
        latest: dict[str, dict[str, Any]] = {}
        wanted = {b["batch_id"] for b in batches}
        while not all(latest.get(b, {}).get("status") in FINAL_STATUSES for b in wanted):
            got = await consumer.getmany(timeout_ms=1000)
            for records in got.values():
                for record in records:
                    status = codec.decode_as("BatchStatus", record.value)
                    if status["batch_id"] in wanted:
                        latest[status["batch_id"]] = status
            for status in latest.values():
                click.echo(_progress_line(status, started))
        return latest
    finally:
        await producer.stop()
        await consumer.stop()


def run_demo(*, exit_when_done: bool) -> None:
    home = cache_root() / "demo"
    broker = LocalBroker(home=home / "broker", port=0)
    click.echo("starting the local Kafka broker (the first run fetches it from Maven Central)")
    bootstrap = broker.start()
    click.echo(f"broker ready at {bootstrap}")
    port = free_port()
    env = {
        **os.environ,
        "BATCHWIRE_KAFKA_BOOTSTRAP": bootstrap,
        "BATCHWIRE_ALLOWED_TENANTS": TENANT,
        "BATCHWIRE_TOPIC_PREFIX": "demo.",
        "BATCHWIRE_WEB_PORT": str(port),
        "BATCHWIRE_DATA_DIR": str(home / "worker-data"),
    }
    log_path = home / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", worker, log_path)
        click.echo(f"worker ready: http://127.0.0.1:{port}/healthz (log {log_path})")
        finals = asyncio.run(_run_batches(bootstrap, "demo.", f"demo-{int(time.time())}"))
        click.echo("all sample batches ended:")
        for status in finals.values():
            click.echo(f"  {status['batch_id']}: {status['status']}, {status['item_errors'] or ''}")
        if not exit_when_done:
            click.echo("worker and broker keep running; Ctrl-C stops them")
            while worker.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        worker.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(30)
        if worker.poll() is None:
            worker.kill()
        broker.stop()
        click.echo("stopped the worker and the broker")


def _wait_ready(url: str, worker: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            raise click.ClickException("the worker exited:\n" + "\n".join(tail))
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(url, timeout=2).json().get("ready"):
                return
        time.sleep(0.5)
    raise click.ClickException(f"the worker did not become ready; see {log_path}")
