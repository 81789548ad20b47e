"""`streams.paused_fetch`: partitions faust pauses (its tables' changelogs) are not fetched."""

from __future__ import annotations

import asyncio

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

from streams import paused_fetch
from tests.fixtures.kafka_io import create_topic, produce

pytestmark = pytest.mark.integration

CHANGELOG_RECORDS = 50


def faust_thread(app: faust.App) -> AIOKafkaConsumerThread:
    """The consumer thread of `app`, as a worker has it."""
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    thread = consumer._thread
    assert isinstance(thread, AIOKafkaConsumerThread)
    return thread


async def test_faust_polls_stop_and_restart_fetching_of_changelogs_it_left_out(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    paused_fetch.install()
    app = faust.App(f"{topic_prefix}pausedfetch", broker=f"kafka://{kafka_bootstrap}")
    app.Table("t", default=int, partitions=1)
    (changelog_topic,) = app.tables.changelog_topics
    topic = f"{topic_prefix}pausedfetch-source"
    await create_topic(kafka_bootstrap, topic, 2)
    await create_topic(kafka_bootstrap, changelog_topic, 1)
    source, other_source = TopicPartition(topic, 0), TopicPartition(topic, 1)
    changelog = TopicPartition(changelog_topic, 0)
    written = [f"c{i}".encode() for i in range(CHANGELOG_RECORDS)]
    await produce(kafka_bootstrap, changelog_topic, [(b"c", v) for v in written])
    await produce(kafka_bootstrap, topic, [(b"s", b"s0")], partition=0)

    thread = faust_thread(app)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([source, other_source, changelog])
    try:
        # before faust pauses it, aiokafka fetches the changelog with the source
        got = await consumer.getmany(source, timeout_ms=10_000)
        assert [r.value for r in got[source]] == [b"s0"]
        # (both were on the broker before the consumer started: one fetch brought both)
        assert changelog in consumer._fetcher._records

        # then faust asks for one source partition only, as once a table recovered (the
        # other one left out too, as while it recovers: a source is never paused here)
        await produce(kafka_bootstrap, topic, [(b"s", b"s1")], partition=0)
        got = await thread._fetch_records(consumer, {source}, timeout=10.0, max_records=100)
        assert [r.value for r in got[source]] == [b"s1"]
        assert consumer.paused() == {changelog}
        # nothing of it is held in aiokafka's buffer any more, and nothing more is fetched
        assert changelog not in consumer._fetcher._records
        await produce(kafka_bootstrap, topic, [(b"s", b"s2")], partition=0)
        got = await thread._fetch_records(consumer, {source}, timeout=10.0, max_records=100)
        assert [r.value for r in got[source]] == [b"s2"]
        assert changelog not in consumer._fetcher._records

        # a rebalance's recovery asks for the changelog again: it resumes where it was
        values: list[bytes] = []
        async with asyncio.timeout(20):
            while len(values) < CHANGELOG_RECORDS:
                got = await thread._fetch_records(
                    consumer, {source, changelog}, timeout=1.0, max_records=100
                )
                values += [r.value for r in got.get(changelog, [])]
        assert values == written
        assert consumer.paused() == set()
    finally:
        await consumer.stop()


async def test_faust_does_not_report_a_paused_partition_as_unfetched() -> None:
    paused_fetch.install()
    app = faust.App("pausedfetch-verify", broker="kafka://127.0.0.1:9")
    thread = faust_thread(app)
    paused, active = TopicPartition("t-changelog", 0), TopicPartition("t", 0)
    thread.consumer._paused_partitions.add(paused)
    checked: list[TopicPartition] = []

    def aiokafka_check(now: float, tp: TopicPartition) -> bool:
        """Faust's check of aiokafka's fetcher, recording what it was asked about."""
        checked.append(tp)
        return True  # "an error was logged": faust's check stops there

    thread._verify_aiokafka_event_path = aiokafka_check  # type: ignore[method-assign]
    thread.verify_event_path(0.0, paused)
    thread.verify_event_path(0.0, active)
    assert checked == [active]
