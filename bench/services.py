"""The processes a bench run starts and stops: Kafka, batchwire workers and the connector,
Redis.  Each is started on 127.0.0.1 only, waited for, and stopped by its own handle."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.cpu import child_pids
from streams.localkafka import LocalBroker
from streams.localkafka.broker import free_port

TENANT = "acme"
TENANT_KEY = "bench-key"
#: the tenant's webhook secret (a fixed test value, not a credential)
WEBHOOK_SECRET = "whsec_YmF0Y2h3aXJlLWJlbmNoLXdlYmhvb2stc2VjcmV0"
READY_TIMEOUT_S = 120.0


@contextlib.contextmanager
def kafka_broker(home: Path) -> Iterator[tuple[str, str, int]]:
    """A fresh local KRaft broker; yields its bootstrap address, Kafka version and pid."""
    broker = LocalBroker(home=home, port=0)
    bootstrap = broker.start()
    try:
        yield bootstrap, broker.version, broker.running_pid() or 0
    finally:
        broker.stop()


def worker_env(
    *,
    bootstrap: str,
    prefix: str,
    data_dir: Path,
    web_port: int,
    target_url: str = "",
) -> dict[str, str]:
    """The contract's environment for a bench worker or connector (tenant `acme`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHWIRE_")}
    env.update(
        BATCHWIRE_KAFKA_BOOTSTRAP=bootstrap,
        BATCHWIRE_TOPIC_PREFIX=prefix,
        BATCHWIRE_ALLOWED_TENANTS=TENANT,
        BATCHWIRE_TENANT_KEYS=f"{TENANT}={TENANT_KEY}",
        BATCHWIRE_WEBHOOK_SECRETS=f"{TENANT}={WEBHOOK_SECRET}",
        BATCHWIRE_CALLBACK_ALLOW_NETS="127.0.0.0/8",
        BATCHWIRE_RETRY_SCHEDULE="0,1,5",
        BATCHWIRE_WEB_PORT=str(web_port),
        BATCHWIRE_DATA_DIR=str(data_dir),
    )
    if target_url:
        env["BATCHWIRE_TARGET_URLS"] = f"{TENANT}={target_url}"
    return env


def memory_kib(pid: int) -> dict[str, int]:
    """`VmRSS` (now) and `VmHWM` (peak resident set since start) of a process, in KiB, each
    summed with its children's (a worker's item-processor processes, `--processes`): the
    sum of peaks is at least the peak of the sum."""
    found = {"VmRSS": 0, "VmHWM": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in found:
                found[name] += int(rest.split()[0])
    for child in child_pids(pid):
        for name, kib in memory_kib(child).items():
            found[name] += kib
    return found


@dataclass
class BatchwireProcess:
    """One `batchwire worker` or `batchwire connector` subprocess, logging to a file."""

    command: str  # "worker" or "connector"
    env: dict[str, str]
    log_path: Path
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['BATCHWIRE_WEB_PORT']}"

    def start(self) -> BatchwireProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", self.command, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """A worker is ready after three ready answers in a row (one more rebalance may
        follow the first); a connector has no health route and is not waited for here."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline and streak < 3:
            self.check_alive()
            try:
                ready = httpx.get(f"{self.url}/healthz", timeout=2).json().get("ready")
            except (httpx.HTTPError, ValueError):
                ready = False
            streak = streak + 1 if ready else 0
            time.sleep(0.3)
        if streak < 3:
            raise RuntimeError(f"{self.command} not ready in {timeout:.0f} s; see {self.log_path}")

    def check_alive(self) -> None:
        """Raise when the process has exited (a scenario must not wait for a dead worker)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.command} exited with {self.proc.returncode}; see {self.log_path}"
            )

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def batchwire_worker(
    env: Mapping[str, str],
    log_path: Path,
    *,
    concurrency: int = 64,
    flags: tuple[str, ...] = (),
) -> Iterator[BatchwireProcess]:
    """A ready worker, stopped on exit; `flags` are more `batchwire worker` flags."""
    worker = BatchwireProcess(
        "worker",
        dict(env),
        log_path,
        args=("--loglevel", "warning", "--concurrency", str(concurrency), *flags),
    )
    try:
        worker.start().wait_ready()
        yield worker
    finally:
        worker.stop()


@contextlib.contextmanager
def batchwire_connector(env: Mapping[str, str], log_path: Path) -> Iterator[BatchwireProcess]:
    """The webhook connector, stopped on exit."""
    connector = BatchwireProcess("connector", dict(env), log_path)
    try:
        yield connector.start()
    finally:
        connector.stop()


# --------------------------------------------------------------------------------------
# Redis (the Celery peer's broker and result backend)
# --------------------------------------------------------------------------------------


def ensure_redis_server() -> str:
    """The path of Debian's `redis-server`, installed with apt-get when missing (as root)."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("redis-server is missing; install Debian's redis-server package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "redis-server"], check=True, env=env, timeout=600
    )
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("apt-get installed redis-server but it is not on PATH")
    return found


@contextlib.contextmanager
def redis_server(home: Path) -> Iterator[tuple[str, int]]:
    """A private redis-server on a free 127.0.0.1 port, no persistence; yields its URL and
    pid."""
    import redis

    binary = ensure_redis_server()
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    with (home / "redis.log").open("ab") as log:
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes", "--dir", str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_file = home / "redis.log"
                    raise RuntimeError(f"redis-server did not start; see {log_file}") from None
                time.sleep(0.1)
        client.close()
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
