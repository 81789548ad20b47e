"""The local broker's helpers that need no Java."""

import fcntl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from streams.localkafka import broker


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 encodes to "-" as the first URL-safe base64 character; StorageTool would
    # read such an id as an option and refuse to format the log dir.
    ids = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(ids))
    cluster_id = broker._cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA"
    assert len(cluster_id) == 22


def test_a_fetch_waits_for_the_one_under_way_and_takes_its_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes starting brokers on a cold cache: the second neither runs Maven nor
    reads a half-written folder; it waits for the first and finds its jars."""
    monkeypatch.setenv("BATCHWIRE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # Maven would be a BrokerError
    home = tmp_path / "kafka-3.9.1"
    home.mkdir()
    with (home / "fetch.lock").open("w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)  # the first fetch is under way
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(broker.fetch_kafka, "3.9.1")
            time.sleep(0.5)
            assert not second.done()  # waiting, not fetching, not failing
            (home / "complete").write_text("3.9.1")  # the first one is done
            fcntl.flock(first, fcntl.LOCK_UN)
            assert second.result(timeout=10) == home / "libs"
