"""When `cluster_watch.problem` says a process must stop: another cluster id in a metadata
answer, or a topic missing without a break for `LOST_AFTER_S`."""

from __future__ import annotations

import weakref

import pytest
from aiokafka.client import AIOKafkaClient

from streams import cluster_watch
from streams.cluster_watch import LOST_AFTER_S, _Updates
from streams.errors import ClusterChanged, TopicsMissing


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_watch, "_expected_id", None)
    monkeypatch.setattr(cluster_watch, "_seen_ids", set())
    monkeypatch.setattr(cluster_watch, "_updates", weakref.WeakKeyDictionary())


def test_another_cluster_id_is_a_problem_once_the_expected_one_is_known() -> None:
    cluster_watch._seen_ids.update({"old", "new"})
    assert cluster_watch.problem(0.0) is None  # nothing expected yet (a connector in tests)
    cluster_watch.expect("old")
    found = cluster_watch.problem(0.0)
    assert isinstance(found, ClusterChanged)
    assert "new, not old" in str(found)
    cluster_watch._seen_ids.discard("new")
    assert cluster_watch.problem(0.0) is None


async def test_a_topic_missing_without_a_break_for_long_enough_is_a_problem() -> None:
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1")  # never started
    updates = cluster_watch._updates.setdefault(client, _Updates())
    updates.answered(["a", "b"], {"a", "b"}, now=100.0)
    assert cluster_watch.problem(1000.0) is None
    for second in range(30):  # b missing in every answer (a client asks every 100 ms)
        updates.answered(["a", "b"], {"a"}, now=200.0 + second)
    assert cluster_watch.problem(200.0 + LOST_AFTER_S - 1) is None
    found = cluster_watch.problem(200.0 + LOST_AFTER_S)
    assert isinstance(found, TopicsMissing)
    assert str(found).startswith("b missing from the cluster for 30 s")
    updates.answered(["a", "b"], {"a", "b"}, now=240.0)  # back: the count starts again
    updates.answered(["a", "b"], {"a"}, now=250.0)
    assert cluster_watch.problem(250.0 + LOST_AFTER_S - 1) is None


async def test_a_gap_in_the_answers_is_not_counted_as_missing() -> None:
    """A topic missing in the last answer before the broker went away (a worker's first
    moments), then no answer for the outage: not a problem, and the count starts again
    with the answers after it."""
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1")  # never started
    updates = cluster_watch._updates.setdefault(client, _Updates())
    updates.answered(["a", "b"], {"a"}, now=100.0)
    assert cluster_watch.problem(100.0 + LOST_AFTER_S) is None  # no answer since: unknown
    for second in range(29):  # the broker back, b still missing
        updates.answered(["a", "b"], {"a"}, now=140.0 + second)
    assert cluster_watch.problem(168.0) is None  # 28 s, not 68
    updates.answered(["a", "b"], {"a"}, now=170.0)
    assert isinstance(cluster_watch.problem(170.0), TopicsMissing)
