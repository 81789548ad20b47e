"""The real `streams.app` worker keeps its rocksdict tables in its data dir and gets them back
from their changelog topics after a restart with an empty data dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
    worker.start()

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
