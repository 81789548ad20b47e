"""`batchwire worker --processes N`: items run in item-processor processes of the worker's,
which report to its `/metrics` and `/healthz`, end with it, and stop it when one dies."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx

from tests.fixtures.accounting import HANDLER_MODULES
from tests.fixtures.kafka_io import results_of, submit_json, wait_final
from tests.fixtures.workers import WorkerFactory, WorkerProcess


def child_pids(worker: WorkerProcess) -> list[int]:
    assert worker.proc is not None
    pid = worker.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """The pids still running after `timeout` seconds at most (none, once all have ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.2)
    return [pid for pid in pids if running(pid)]


async def test_items_run_in_the_item_processes_and_count_in_the_worker_s_metrics(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker = worker_factory(HANDLER_MODULES, args=("--processes", "2"))
    processes = child_pids(worker)
    assert len(processes) == 2
    assert httpx.get(f"{worker.url}/healthz").json()["ready"] is True
    n, failing = 300, 6
    items = [  # failing items have no group: nothing is skipped
        {"id": f"i{i}", "namespace": "faults", "action": "fail", "params": {"i": i}}
        if i % 50 == 49
        else {"id": f"i{i}", "namespace": "faults", "action": "pid", "params": {"i": i}}
        | ({"group": f"g{i % 3}"} if i % 2 else {})
        for i in range(n)
    ]
    await submit_json(
        kafka_bootstrap, topic_prefix, {"batch_id": "split", "tenant": "acme", "items": items}
    )
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["split"], timeout=120))["split"]
    counters = final["counters"]
    assert final["status"] == "completed_with_errors"
    assert counters["posted"] == counters["processed"] == n
    assert (counters["succeeded"], counters["failed"]) == (n - failing, failing)
    results = await results_of(kafka_bootstrap, topic_prefix, "split", n)
    ran_in = {r["output"]["pid"] for r in results if r["status"] == "succeeded"}
    assert ran_in == set(processes)  # both processes ran items, the worker's own none

    wanted = [
        f'batchwire_items_processed_total{{status="succeeded"}} {n - failing}',
        f'batchwire_items_processed_total{{status="failed"}} {failing}',
        f"batchwire_item_latency_seconds_count {n}",
    ]
    deadline = time.monotonic() + 30  # the processes report twice a second
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{worker.url}/metrics").text
        if all(line in text.splitlines() for line in wanted):
            break
        time.sleep(0.5)
    for line in wanted:
        assert line in text.splitlines(), text


def test_item_processes_end_with_their_worker(worker_factory: WorkerFactory) -> None:
    stopped = worker_factory(args=("--processes", "1"))
    killed = worker_factory(args=("--processes", "1"))
    stopped_children, killed_children = child_pids(stopped), child_pids(killed)
    assert len(stopped_children) == len(killed_children) == 1
    stopped.stop()  # SIGTERM: the worker stops its processes
    assert stopped.proc is not None and stopped.proc.returncode is not None
    assert wait_gone(stopped_children) == []
    killed.stop(kill=True)  # SIGKILL: the processes see their stdin end
    assert wait_gone(killed_children) == []


def test_a_worker_stops_when_one_of_its_item_processes_dies(
    worker_factory: WorkerFactory,
) -> None:
    worker = worker_factory(args=("--processes", "2"))
    first, second = child_pids(worker)
    os.kill(first, signal.SIGKILL)
    assert worker.proc is not None
    worker.proc.wait(timeout=60)
    assert worker.proc.returncode != 0
    assert re.search(r"item-processor process \d exited with status -9", worker.log_tail(200))
    assert wait_gone([second]) == []
