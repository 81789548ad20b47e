"""A worker told to stop while Kafka is unreachable ends in bounded time
(`streams.stop_deadline`), and the batch it held runs to an exact end after a restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.localkafka import LocalBroker
from tests.fixtures.accounting import HANDLER_MODULES, wait_final_status
from tests.fixtures.workers import WorkerFactory, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACME = {"Authorization": "Bearer key-acme"}
ITEMS = 400
#: a worker that ignored its stop timeout would sit in faust's stop for minutes (its
#: producer gives up after 20); this is how long the test waits for an exit
EXIT_WAIT_S = 40.0


async def _exit_status(worker: WorkerProcess) -> int:
    return await asyncio.to_thread(worker.exit_status, EXIT_WAIT_S)


def _item_processes(worker: WorkerProcess) -> list[int]:
    """The pids of the worker's item processes (`--processes`)."""
    assert worker.proc is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == worker.proc.pid and b"streams.item_process_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _status(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any] | None:
    try:
        answer = await client.get(f"/v1/batches/{batch_id}", headers=ACME)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


async def test_a_worker_told_to_stop_with_kafka_down_ends_and_loses_nothing(
    own_broker: LocalBroker, worker_factory: WorkerFactory
) -> None:
    """With the broker stopped mid-batch, a worker sent SIGTERM ends at its `--stop-timeout`
    (status 1, saying why) instead of waiting for Kafka in faust's stop, and one sent SIGINT
    twice ends at the second, its item process with it. With the broker back, the restarted
    workers finish the batch with every item counted once."""
    env = {**HANDLER_MODULES, "BATCHWIRE_KAFKA_BOOTSTRAP": own_broker.bootstrap}
    quick_failover = ("--session-timeout", "6")
    patient = await asyncio.to_thread(
        worker_factory, env, args=(*quick_failover, "--stop-timeout", "3")
    )
    hasty = await asyncio.to_thread(worker_factory, env, args=(*quick_failover, "--processes", "1"))
    items = [
        {"namespace": "faults", "action": "work", "params": {"i": i, "ms": 400}}
        for i in range(ITEMS)
    ]
    async with httpx.AsyncClient(base_url=patient.url, timeout=30) as client:
        sent = await client.post(
            "/v1/tenants/acme/batches", json={"batch_id": "stop-1", "items": items}, headers=ACME
        )
        assert sent.status_code == 202, sent.text
        for _ in range(100):  # bounded: ~20 s for the first results
            status = await _status(client, "stop-1")
            if status is not None and status["counters"]["processed"] > 0:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("no item of the batch ran")
        assert status["status"] == "in_progress", status  # the outage falls mid-batch

        await asyncio.to_thread(own_broker.stop)
        assert patient.proc is not None and hasty.proc is not None
        item_process = _item_processes(hasty)
        assert len(item_process) == 1, item_process
        patient.proc.send_signal(signal.SIGTERM)
        hasty.proc.send_signal(signal.SIGINT)
        await asyncio.sleep(1)
        hasty.proc.send_signal(signal.SIGINT)
        assert await _exit_status(hasty) == 1
        assert "SIGINT received again while stopping" in hasty.log_path.read_text()
        # killed with it, not left to wait out a stop timeout of its own (30 s) for Kafka
        for _ in range(50):  # bounded: 5 s
            if not _running(item_process[0]):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the item process outlived its worker")
        assert await _exit_status(patient) == 1
        assert "not stopped within 3 s" in patient.log_path.read_text()

        await asyncio.to_thread(own_broker.start, keep_data=True)
        await asyncio.gather(asyncio.to_thread(patient.start), asyncio.to_thread(hasty.start))
    status = await wait_final_status([patient.url, hasty.url], "stop-1", timeout=60)
    assert status is not None, "the batch did not end after the restart"
    assert status["status"] == "completed", status
    counters = status["counters"]
    assert (counters["posted"], counters["processed"], counters["succeeded"]) == (ITEMS,) * 3
