"""A worker whose Kafka is no longer the one it started on: a broker back without its data,
or its topics deleted under it (`streams.cluster_watch`, `streams.data_dir`)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest

from streams.cluster_watch import EXIT_STATUS, LOST_AFTER_S
from streams.data_dir import CLUSTER_ID_FILE
from streams.localkafka import LocalBroker
from tests.fixtures.broker import delete_topics
from tests.fixtures.workers import WorkerFactory, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACME = {"Authorization": "Bearer key-acme"}
BATCH = {"items": [{"namespace": "batchwire", "action": "noop", "params": {}}]}


async def _one_batch_completes(worker: WorkerProcess) -> None:
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        answer = await client.post("/v1/tenants/acme/batches?wait=30", json=BATCH, headers=ACME)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed"


async def _exit_status(process: WorkerProcess, timeout: float) -> int:
    return await asyncio.to_thread(process.exit_status, timeout)


async def test_a_broker_back_without_its_data_ends_the_worker_and_its_restart_starts_afresh(
    own_broker: LocalBroker, worker_factory: WorkerFactory, connector_factory: WorkerFactory
) -> None:
    """Before, the worker ran on against the new cluster (a core's worth of metadata
    requests for its topics), and once they existed again its restart stopped at faust's
    recovery (its tables' changelog offsets lay past the new changelogs' ends). The
    connector ends too."""
    env = {"BATCHWIRE_KAFKA_BOOTSTRAP": own_broker.bootstrap}
    worker = await asyncio.to_thread(worker_factory, env)
    connector = connector_factory(env)
    await _one_batch_completes(worker)
    await asyncio.sleep(2)  # the connector has joined its group and follows the cluster
    assert connector.proc is not None and connector.proc.poll() is None
    data_dir = Path(worker.env["BATCHWIRE_DATA_DIR"])
    first_cluster = (data_dir / CLUSTER_ID_FILE).read_text().strip()

    await asyncio.to_thread(own_broker.stop)
    await asyncio.to_thread(own_broker.start)  # formats its storage anew: a new cluster
    assert await _exit_status(worker, timeout=60) == EXIT_STATUS
    assert f"not {first_cluster} that this process's offsets" in worker.log_path.read_text()
    assert await _exit_status(connector, timeout=30) == EXIT_STATUS
    assert f"not {first_cluster} that this process's offsets" in connector.log_path.read_text()

    await asyncio.to_thread(worker.start)  # as a supervisor would
    await _one_batch_completes(worker)
    assert (data_dir / CLUSTER_ID_FILE).read_text().strip() != first_cluster
    set_aside = data_dir.with_name(f"{data_dir.name}.cluster-{first_cluster}")
    assert (set_aside / CLUSTER_ID_FILE).read_text().strip() == first_cluster


async def test_a_worker_whose_topics_are_deleted_paces_its_metadata_requests_and_ends(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Before, aiokafka asked for metadata again as soon as an answer said a topic was
    unknown: ~12,000 requests (and as many logged errors) a second, until restarted."""
    worker = await asyncio.to_thread(worker_factory)
    await _one_batch_completes(worker)
    await delete_topics(kafka_bootstrap, topic_prefix)
    deleted = time.monotonic()
    assert await _exit_status(worker, timeout=LOST_AFTER_S + 60) == EXIT_STATUS
    missing_s = time.monotonic() - deleted
    log = worker.log_path.read_text()
    assert "missing from the cluster" in log
    # aiokafka logs each unknown topic of each answer; `streams.log_limits` folds repeats
    # into "[N more like this in 10 s]"
    lines = re.findall(r"not found in cluster metadata(?: \[(\d+) more like this)?", log)
    errors = sum(1 + int(more or 0) for more in lines)
    assert 0 < errors < 500 * missing_s, f"{errors} unknown-topic errors in {missing_s:.0f} s"
