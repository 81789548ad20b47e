"""A data dir is claimed for one Kafka cluster; another cluster's is set aside, not lost.
A data dir is one process's (another worker on it is refused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.data_dir import CLUSTER_ID_FILE, claim, lock
from streams.errors import InUse


def test_a_data_dir_of_another_cluster_is_moved_aside_each_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert claim(data, "one") is None  # new: taken
    (data / "store").write_text("tables of one")
    assert claim(data, "one") is None  # the same cluster: kept as it is
    assert (data / "store").read_text() == "tables of one"

    moved = claim(data, "two")
    assert moved == tmp_path / "data.cluster-one"
    assert (moved / "store").read_text() == "tables of one"
    assert sorted(p.name for p in data.iterdir()) == [CLUSTER_ID_FILE]
    assert (data / CLUSTER_ID_FILE).read_text().strip() == "two"

    claim(data, "one")  # back on "one" (its earlier dir is taken): a free name
    assert claim(data, "two") == tmp_path / "data.cluster-one-2"


def test_a_data_dir_from_before_the_marker_is_taken_as_it_is(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "store").write_text("old tables")
    assert claim(data, "any") is None
    assert (data / "store").read_text() == "old tables"


def test_a_data_dir_locked_by_another_process_is_refused_until_it_ends(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from streams.data_dir import lock; "
            "lock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(InUse, match=f"in use by another worker \\(pid {holder.pid}\\)"):
            lock(data)
    finally:
        holder.kill()
        holder.wait(10)
    lock(data)  # its lock ended with it
    lock(data)  # this process's own: taken again at no cost
    claim(data, "one")  # the lock sits beside the dir, which a claim may move
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "data.lock"]
