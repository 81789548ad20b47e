"""The real `streams.app` worker keeps its rocksdict tables in its data dir and gets them back
from their changelog topics after a restart with an empty data dir; lookups while it starts
answer the contract's 503 `unavailable` until they can answer right."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.accounting import HEADERS
from tests.fixtures.kafka_io import Record, read_for, read_until, submit_json, wait_final
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _batch(n: int, *, salt: str = "") -> dict[str, object]:
    return {
        "batch_id": "restore-1",
        "tenant": "acme",
        "items": [
            {
                "id": f"i{i}",
                "namespace": "batchwire",
                "action": "echo",
                "params": {"i": i, "s": salt},
            }
            for i in range(n)
        ],
    }


async def _lookups_while_starting(url: str, batch_id: str) -> list[httpx.Response]:
    """The batch's status asked of a starting worker as fast as it answers, up to the first
    answer that is not a 503 (bounded: 90 s)."""
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + 90.0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                answer = await client.get(f"/v1/batches/{batch_id}", headers=HEADERS)
            except httpx.TransportError:  # not listening yet
                await asyncio.sleep(0.01)
                continue
            answers.append(answer)
            if answer.status_code != 503:
                break
    return answers


def _count(records: list[Record], batch_id: str) -> int:
    return sum(1 for r in records if r.decoded()["batch_id"] == batch_id)


async def test_tables_come_back_from_the_changelog(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    worker = worker_factory()
    await submit_json(kafka_bootstrap, topic_prefix, _batch(5))
    final = await wait_final(kafka_bootstrap, topic_prefix, ["restore-1"])
    assert final["restore-1"]["counters"]["succeeded"] == 5
    items_topic = f"{topic_prefix}batchwire.items"
    assert (
        _count(await read_until(kafka_bootstrap, items_topic, lambda r: len(r) >= 5), "restore-1")
        == 5
    )

    worker.stop()
    data_dir = Path(worker.env["BATCHWIRE_DATA_DIR"])
    assert any(data_dir.rglob("*")), "the rocksdict store wrote nothing to the data dir"
    shutil.rmtree(data_dir)  # only the changelog topics can bring the tables back
    worker.start(wait_ready=False)

    # while it joins and reads its tables in: the contract's 503 (not faust's own body, not
    # a 500 before its producer knows the changelog's partitions), then the batch as it ended
    answers = await _lookups_while_starting(worker.url, "restore-1")
    *waits, served = answers
    assert served.status_code == 200, served.text
    assert (served.json()["status"], served.json()["counters"]["succeeded"]) == ("completed", 5)
    for answer in waits:
        assert answer.json()["error"]["code"] == "unavailable", answer.text
        assert answer.headers["Retry-After"] == "5"
    worker.wait_ready()

    # the submissions table came back: the same batch again starts nothing new ...
    await submit_json(kafka_bootstrap, topic_prefix, _batch(5))
    # ... and other content under the same batch id is a conflict
    await submit_json(kafka_bootstrap, topic_prefix, _batch(5, salt="changed"))
    rejected = await read_until(
        kafka_bootstrap, f"{topic_prefix}batchwire.rejected", lambda r: len(r) >= 1
    )
    assert [r.decoded()["error"]["code"] for r in rejected] == ["batch_conflict"]
    assert rejected[0].decoded()["batch_id"] == "restore-1"
    assert _count(await read_for(kafka_bootstrap, items_topic, 3.0), "restore-1") == 5
