"""`batchwire demo`: the whole product on 127.0.0.1, with one batch of each contract shape.

Starts a local Kafka broker, a worker, the webhook connector, a small demo tenant API and a
webhook receiver that checks every signature; submits one batch in the shape of each batch API
batchwire replaces; shows their progress and the callbacks received.  Ctrl-C (or, with
`--exit-when-done`, the end of every batch and its callbacks) stops everything it started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import httpx
from aiohttp import web

from streams.aggregation import FINAL_STATUSES
from streams.child_process import die_with_parent
from streams.client import BatchwireApiError, BatchwireClient, verify_webhook
from streams.localkafka import LocalBroker
from streams.localkafka.broker import cache_root, free_port

TENANT = "demo"
KEY = "demo-key"
SECRET = "whsec_" + base64.b64encode(b"batchwire-demo-webhook-secret-32").decode()


def sample_batches(run: str, hook: str) -> list[tuple[str, dict[str, Any]]]:
    """One batch per batch API of the contract, against the demo tenant API."""
    return [
        (
            "endpoint invocation, per-item callbacks",
            {
                "batch_id": f"{run}-invoke",
                "callback": {"url": hook, "mode": "item"},
                "items": [
                    {
                        "id": f"order-{i}",
                        "method": "POST",
                        "path": f"/orders/{i}",
                        "body": {"qty": i},
                    }
                    for i in range(5)
                ],
            },
        ),
        (
            "namespace/action jobs, completion callback",
            {
                "batch_id": f"{run}-jobs",
                "callback": {"url": hook},
                "metadata": {"asyncId": run},
                "items": [
                    {
                        "id": f"job{i}",
                        "namespace": "batchwire",
                        "action": "echo",
                        "params": {"n": i},
                    }
                    for i in range(2000)
                ],
            },
        ),
        (
            "sequential REST batch",
            {
                "batch_id": f"{run}-rest",
                "callback": {"url": hook},
                "stop_on_failure": False,
                "items": [
                    {"id": str(i), "method": m, "path": p, "group": "sequence"}
                    for i, (m, p) in enumerate(
                        [("PUT", "/accounts/1"), ("GET", "/missing"), ("PATCH", "/accounts/1")]
                    )
                ],
            },
        ),
        (
            "polled batch jobs in stages",
            {
                "batch_id": f"{run}-staged",
                "callback": {"url": hook},
                "items": [
                    {
                        "id": f"{kind}-{i}",
                        "namespace": "batchwire",
                        "action": "echo",
                        "params": {"kind": kind},
                        "stage": stage,
                    }
                    for stage, kind in enumerate(("customer", "order", "invoice"))
                    for i in range(300)
                ],
            },
        ),
        (
            "/v1/batch transactions",
            {
                "batch_id": f"{run}-v1",
                "callback": {"url": hook},
                "headers": {"X-Request-Id": run},
                "items": [
                    {
                        "id": f"r{i}",
                        "method": "POST",
                        "path": f"/payments/{i}",
                        "group": f"tx{i % 3}",
                    }
                    for i in range(12)
                ],
            },
        ),
    ]


async def _tenant_api(request: web.Request) -> web.Response:
    """The demo tenant's API: echoes, slowly enough to watch, and 404 for /missing."""
    await asyncio.sleep(0.05)
    if request.path == "/missing":
        return web.json_response({"reason": "no such resource"}, status=404)
    body = await request.text()
    return web.json_response({"path": request.path, "method": request.method, "received": body})


class Receiver:
    """The client's webhook endpoint: checks each signature and prints each callback."""

    def __init__(self) -> None:
        self.count = 0
        self.bad_signatures = 0
        self.batches_done: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        valid = verify_webhook(SECRET, headers, body)
        self.count += 1
        self.bad_signatures += 0 if valid else 1
        payload = json.loads(body)
        mark = "signed ok" if valid else "BAD SIGNATURE"
        if "status" in payload:
            self.batches_done.add(payload["batch_id"])
            click.echo(f"  callback  {payload['batch_id']}: {payload['status']} ({mark})")
        elif self.count <= 8:
            click.echo(
                f"  callback  {payload['batch_id']}/{payload['item_id']}: "
                f"success={payload['success']} ({mark})"
            )
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command, "--loglevel", "warning"]
            if command == "worker"
            else [sys.executable, "-m", "streams.cli", command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),  # a demo killed by SIGKILL leaves nothing running
        )


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(240):
            if proc.poll() is not None:
                text = await asyncio.to_thread(log.read_text, errors="replace")
                tail = "\n".join(text.splitlines()[-30:])
                raise click.ClickException(f"the worker exited:\n{tail}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if (await client.get(url, timeout=2)).json().get("ready"):
                    return
            await asyncio.sleep(0.5)
    raise click.ClickException(f"the worker did not become ready; see {log}")


def _line(status: dict[str, Any]) -> str:
    c = status["counters"]
    width = 24
    filled = int(width * c["processed"] / max(c["posted"], 1))
    bar = "#" * filled + "-" * (width - filled)
    rate = ""
    if status.get("updated_at") and status.get("created_at"):
        seconds = (
            datetime.fromisoformat(status["updated_at"])
            - datetime.fromisoformat(status["created_at"])
        ).total_seconds()
        rate = f"{c['processed'] / seconds:7.0f} items/s" if seconds > 0 else ""
    return (
        f"  {status['batch_id']:<24} [{bar}] {c['processed']:>5}/{c['posted']:<5} "
        f"ok {c['succeeded']:<5} failed {c['failed']:<3} {status['status']:<22} {rate}"
    )


async def _run(home: Path, bootstrap: str, exit_when_done: bool) -> None:
    receiver = Receiver()
    tenant_app = web.Application()
    tenant_app.router.add_route("*", "/{tail:.*}", _tenant_api)
    # Ctrl-C, `kill`, `timeout` or a closed terminal stop everything. Through the loop: a
    # plain signal handler waited for the idle loop to wake (SIGTERM left the broker, the
    # worker and the connector running)
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        asyncio.get_running_loop().add_signal_handler(signum, main.cancel)
    hooks_app = web.Application()
    hooks_app.router.add_post("/{tail:.*}", receiver.handle)
    async with serve(tenant_app) as tenant_url, serve(hooks_app) as hooks_url:
        port = free_port()
        env = {
            **os.environ,
            "BATCHWIRE_KAFKA_BOOTSTRAP": bootstrap,
            "BATCHWIRE_ALLOWED_TENANTS": TENANT,
            "BATCHWIRE_TENANT_KEYS": f"{TENANT}={KEY}",
            "BATCHWIRE_TARGET_URLS": f"{TENANT}={tenant_url}",
            "BATCHWIRE_WEBHOOK_SECRETS": f"{TENANT}={SECRET}",
            "BATCHWIRE_CALLBACK_ALLOW_NETS": "127.0.0.0/8",
            "BATCHWIRE_RETRY_SCHEDULE": "0,1,5,30",
            "BATCHWIRE_TOPIC_PREFIX": "demo.",
            "BATCHWIRE_WEB_PORT": str(port),
            "BATCHWIRE_DATA_DIR": str(home / "worker-data"),
        }
        worker = _spawn("worker", env, home / "worker.log")
        connector = _spawn("connector", env, home / "connector.log")
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(f"{base}/healthz", worker, home / "worker.log")
            click.echo(f"worker ready at {base} (log {home / 'worker.log'})")
            click.echo(f"connector running (log {home / 'connector.log'})")
            click.echo(f"tenant API at {tenant_url}, webhook receiver at {hooks_url}")
            click.echo(f"dashboard: {base}/dashboard#key={KEY}")
            await _submit_and_watch(base, f"{hooks_url}/hooks", receiver, exit_when_done)
        finally:
            for proc in (connector, worker):
                proc.send_signal(signal.SIGTERM)
            for proc in (connector, worker):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def _status(client: BatchwireClient, batch_id: str) -> dict[str, Any]:
    """The batch's status, or `accepted` while its first part is still on its way."""
    try:
        return await client.status(batch_id)
    except BatchwireApiError as exc:
        if exc.code != "not_found":
            raise
    counters = dict.fromkeys(("posted", "processed", "succeeded", "failed", "skipped"), 0)
    return {"batch_id": batch_id, "status": "accepted", "counters": counters}


async def _submit_and_watch(base: str, hook: str, receiver: Receiver, exit_when_done: bool) -> None:
    run = f"demo-{int(time.time())}"
    batches = sample_batches(run, hook)
    async with BatchwireClient(base, KEY) as client:
        for shape, batch in batches:
            answer = await client.submit(TENANT, batch)
            click.echo(f"submitted {answer['batch_id']:<24} {shape}")
        ids = [batch["batch_id"] for _, batch in batches]
        # every batch ends with a batch callback, except those asking for item callbacks only
        final_callbacks = {b["batch_id"] for _, b in batches if b["callback"].get("mode") != "item"}
        click.echo("progress (a line when a batch changes):")
        shown: dict[str, str] = {}
        while True:
            statuses = {batch_id: await _status(client, batch_id) for batch_id in ids}
            for batch_id, status in statuses.items():
                line = _line(status)
                if shown.get(batch_id) != line:
                    click.echo(line)
                    shown[batch_id] = line
            done = all(s["status"] in FINAL_STATUSES for s in statuses.values())
            if done and receiver.batches_done >= final_callbacks:
                break
            await asyncio.sleep(0.5)
        click.echo(
            f"all {len(ids)} batches ended; {receiver.count} callbacks received, "
            f"{receiver.bad_signatures} with a bad signature"
        )
        click.echo(f"results (Bearer {KEY}):")
        for batch_id in ids:
            click.echo(f"  {base}/v1/batches/{batch_id}/results")
        if not exit_when_done:
            click.echo("everything keeps running; Ctrl-C stops it")
            await asyncio.Event().wait()


def run_demo(*, exit_when_done: bool) -> None:
    home = cache_root() / "demo"
    home.mkdir(parents=True, exist_ok=True)
    # each demo starts a new broker, so the worker's table stores start empty too
    shutil.rmtree(home / "worker-data", ignore_errors=True)
    broker = LocalBroker(home=home / "broker", port=0)
    click.echo("starting the local Kafka broker (the first run fetches it from Maven Central)")
    bootstrap = broker.start(die_with_parent=True)
    click.echo(f"broker ready at {bootstrap}")
    try:
        asyncio.run(_run(home, bootstrap, exit_when_done))
    except (KeyboardInterrupt, asyncio.CancelledError):  # a signal (`_run`)
        click.echo("stopping")
    finally:
        broker.stop()
        click.echo("stopped the worker, the connector, the demo servers and the broker")
