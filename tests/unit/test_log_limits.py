"""`streams.log_limits`: one record per message a while, with the count of those left out."""

from __future__ import annotations

import logging

import pytest

from streams import log_limits
from streams.log_limits import RepeatLimit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, name: str = "aiokafka.client") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_one_record_per_message_each_interval_then_the_count_left_out() -> None:
    clock = Clock()
    limit = RepeatLimit(interval_s=10.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    passed = []
    for second in range(25):  # 4 failures a second, the node id and error varying
        clock.now = float(second)
        for attempt in range(4):
            r = record(template, attempt, "Connect call failed")
            if limit.filter(r):
                passed.append((second, r.getMessage()))
    assert [s for s, _ in passed] == [0, 10, 20]
    assert passed[0][1] == "Unable connect to node with id 0: Connect call failed"
    assert passed[1][1] == (
        "Unable connect to node with id 0: Connect call failed [39 more like this in 10 s]"
    )
    assert passed[2][1].endswith("[39 more like this in 10 s]")


def test_messages_and_loggers_are_limited_apart() -> None:
    limit = RepeatLimit(interval_s=10.0, clock=Clock())
    assert limit.filter(record("Unable to update metadata from %s", [0]))
    assert limit.filter(record("Unable connect to node with id %s: %s", 0, "x"))
    assert limit.filter(record("Unable to update metadata from %s", [0], name="aiokafka.conn"))
    assert not limit.filter(record("Unable to update metadata from %s", [1]))


def test_installed_on_aiokafka_loggers_only(caplog: pytest.LogCaptureFixture) -> None:
    import aiokafka.client
    import aiokafka.consumer.fetcher

    log_limits.install()
    with caplog.at_level(logging.ERROR):
        for node in range(50):  # the loggers of the two flooding messages, as aiokafka has them
            aiokafka.client.log.error("Unable connect to node with id %s: %s", node, "refused")
            aiokafka.consumer.fetcher.log.error("Failed fetch messages from %s: %s", node, "x")
            logging.getLogger("streams.test").error("ours %s", node)
    by_logger = [r.name for r in caplog.records]
    assert by_logger.count(aiokafka.client.log.name) == 1
    assert by_logger.count(aiokafka.consumer.fetcher.log.name) == 1
    assert by_logger.count("streams.test") == 50
