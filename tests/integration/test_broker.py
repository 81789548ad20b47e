"""The local broker manager and a real produce/consume round trip."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.errors import BrokerError
from streams.kafka_admin import ensure_topics, partitions_of, topic_config
from streams.localkafka import LocalBroker
from streams.localkafka.broker import fetch_kafka, metadata_answers
from tests.fixtures.kafka_io import create_topic

pytestmark = pytest.mark.integration


async def test_produce_consume_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}roundtrip"
    await create_topic(kafka_bootstrap, topic, 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, key=f"k{i % 5}".encode(), value=f"v{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"{topic_prefix}g",
    )
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        while len(got) < 30:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "no message arrived within 10 s"
            for records in batch.values():
                got.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    assert sorted(v for _, v in got) == sorted(f"v{i}".encode() for i in range(30))
    # one key always lands on one partition, in order
    per_key = [v for k, v in got if k == b"k0"]
    assert per_key == [f"v{i}".encode() for i in range(0, 30, 5)]


async def test_ensure_topics_creates_what_is_missing_and_says_when_it_cannot(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The broker answers a creation it refuses with an error code, not an exception:
    `ensure_topics` checks that every topic is there (it once returned without them, and
    the process waited for topics that never came)."""
    names = [f"{topic_prefix}one", f"{topic_prefix}two"]
    cluster = await ensure_topics(kafka_bootstrap, {name: topic_config() for name in names})
    assert await ensure_topics(kafka_bootstrap, {names[0]: topic_config()}) == cluster
    for name in names:
        assert len(await partitions_of(kafka_bootstrap, name)) == 8
    refused = {f"{topic_prefix}refused": {"cleanup.policy": "no-such-policy"}}
    with pytest.raises(BrokerError, match="could not create the topics"):
        await ensure_topics(kafka_bootstrap, refused)


def test_broker_auto_topic_creation_is_off(kafka_bootstrap: str, topic_prefix: str) -> None:
    if os.environ.get("BATCHWIRE_KAFKA_BOOTSTRAP"):
        pytest.skip("a broker given from outside has its own settings")

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=3000)
        await producer.start()
        try:
            await producer.send_and_wait(f"{topic_prefix}never-declared", b"x")
        finally:
            await producer.stop()

    import asyncio

    from aiokafka.errors import KafkaError

    with pytest.raises(KafkaError):
        asyncio.run(produce())


def test_cli_up_status_down_leaves_no_process(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "streams.cli", "kafka", "--home", str(tmp_path), "--port", "0"]
    up = subprocess.run([*cli, "up"], capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stderr
    bootstrap = up.stdout.strip().splitlines()[-1]
    assert bootstrap.startswith("127.0.0.1:")
    assert metadata_answers(bootstrap)
    pid = int((tmp_path / "broker.pid").read_text())
    status = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=60)
    assert status.stdout.startswith("ready"), status.stdout
    down = subprocess.run([*cli, "down"], capture_output=True, text=True, timeout=60)
    assert down.stdout.strip() == "stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not metadata_answers(bootstrap)
    again = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=60)
    assert again.stdout.strip() == "stopped"


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is taken"):
            LocalBroker(home=tmp_path, port=port).start()


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_kafka()  # the cache is warm; only java is missing
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="`java` is not on PATH"):
        LocalBroker(home=tmp_path / "home").start()


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHWIRE_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="`mvn` is not on PATH"):
        fetch_kafka()


def test_failed_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHWIRE_CACHE_DIR", str(tmp_path))
    with pytest.raises(BrokerError, match=r"could not fetch Kafka 0\.0\.404"):
        fetch_kafka("0.0.404")
    assert not (tmp_path / "kafka-0.0.404" / "complete").exists()


async def _send(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _values(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        return [r.value or b"" for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def _topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


def test_a_restart_keeping_data_keeps_topics_and_port_a_plain_start_wipes(
    tmp_path: Path,
) -> None:
    import asyncio

    broker = LocalBroker(home=tmp_path, heap="512m")
    try:
        bootstrap = broker.start()
        asyncio.run(create_topic(bootstrap, "kept", 1))
        asyncio.run(_send(bootstrap, "kept", b"before the restart"))
        broker.stop()
        assert not metadata_answers(bootstrap)
        assert broker.start(keep_data=True) == bootstrap  # the same port, no new format
        asyncio.run(_send(bootstrap, "kept", b"after"))
        assert asyncio.run(_values(bootstrap, "kept")) == [b"before the restart", b"after"]
        broker.stop()
        broker.start()  # a plain start formats a new cluster: the topic is gone
        assert "kept" not in asyncio.run(_topics(bootstrap))
    finally:
        broker.stop()
