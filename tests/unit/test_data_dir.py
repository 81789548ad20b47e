"""A data dir is claimed for one Kafka cluster; another cluster's is set aside, not lost."""

from __future__ import annotations

from pathlib import Path

from streams.data_dir import CLUSTER_ID_FILE, claim


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
