"""The pause before reconnecting to a broker that refused the last connection."""

from __future__ import annotations

import socket
import time
from typing import Any

import aiokafka.client
import pytest
from aiokafka.cluster import BrokerMetadata

from streams import reconnect_backoff
from streams.reconnect_backoff import ReconnectBackoff


def test_the_pause_doubles_from_the_first_failure_up_to_its_cap_and_resets() -> None:
    backoff = ReconnectBackoff(base_s=0.05, max_s=1.0, jitter=lambda: 0.0)
    assert backoff.wait_s(1, now=100.0) == 0.0
    pauses = []
    for _ in range(7):
        backoff.failed(1, now=100.0)
        pauses.append(round(backoff.wait_s(1, now=100.0), 3))
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.wait_s(2, now=100.0) == 0.0  # per node
    assert backoff.wait_s(1, now=101.5) == 0.0  # its pause is over
    backoff.succeeded(1)
    backoff.failed(1, now=200.0)
    assert backoff.wait_s(1, now=200.0) == pytest.approx(0.05)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_client_tries_a_node_that_refuses_it_a_few_times_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the pause, aiokafka connected again at once, thousands of times a second."""
    reconnect_backoff.install()
    attempts = 0
    real_create_conn = aiokafka.client.create_conn

    async def create_conn(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await real_create_conn(*args, **kwargs)

    monkeypatch.setattr(aiokafka.client, "create_conn", create_conn)
    client = aiokafka.client.AIOKafkaClient(bootstrap_servers="127.0.0.1:1")
    port = _closed_port()  # nothing listens: every connection is refused at once
    monkeypatch.setattr(
        client.cluster,
        "broker_metadata",
        lambda node: BrokerMetadata(node, "127.0.0.1", port, None),
    )
    end = time.monotonic() + 1.0
    calls = 0
    while time.monotonic() < end:
        assert await client._get_conn(1) is None
        calls += 1
    assert attempts <= 6, attempts  # 50 ms, 100, 200, 400, 800 (±20%): five or six in a second
    assert calls == attempts
    await client.close()
