"""A growing pause before reconnecting to a broker that refused the last connection
(Kafka's `reconnect.backoff.ms` / `reconnect.backoff.max.ms`, KIP-144, for aiokafka).

aiokafka's client connects again as soon as anything asks for the broker, and a failed
connection itself asks for new metadata, which connects again (aio-libs/aiokafka#496,
faust-streaming#624; the fix proposed upstream, aiokafka PR #1014, is not merged). While
the broker was down, one worker made ~7,800 connection attempts and as many metadata
updates a second, a whole core of CPU (a 20 s outage of a dev broker).
`install` makes every aiokafka client of the process wait before connecting to a node
whose last connection failed: 50 ms after the first failure, doubling up to 1 s (Kafka's
defaults), with ±20% jitter; a connection that succeeds resets it. The worker, its item
processes and the connector install it.
"""

from __future__ import annotations

import asyncio
import functools
import random
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiokafka.client import AIOKafkaClient, ConnectionGroup

#: the pause after a node's first failed connection, and the most it grows to
BACKOFF_S = 0.05
BACKOFF_MAX_S = 1.0
JITTER = 0.2


class ReconnectBackoff:
    """Per node: how many connections failed in a row, and when the next may be tried."""

    def __init__(
        self,
        base_s: float = BACKOFF_S,
        max_s: float = BACKOFF_MAX_S,
        jitter: Callable[[], float] = lambda: random.uniform(-JITTER, JITTER),
    ) -> None:
        self.base_s, self.max_s, self.jitter = base_s, max_s, jitter
        self._failures: dict[Hashable, int] = {}
        self._next_at: dict[Hashable, float] = {}

    def wait_s(self, node: Hashable, now: float) -> float:
        """How long to wait before connecting to `node` (0 when it may be tried now)."""
        return max(0.0, self._next_at.get(node, 0.0) - now)

    def failed(self, node: Hashable, now: float) -> None:
        failures = self._failures.get(node, 0) + 1
        self._failures[node] = failures
        pause = min(self.max_s, self.base_s * 2 ** (failures - 1))
        self._next_at[node] = now + pause * (1 + self.jitter())

    def succeeded(self, node: Hashable) -> None:
        self._failures.pop(node, None)
        self._next_at.pop(node, None)


_backoffs: weakref.WeakKeyDictionary[AIOKafkaClient, ReconnectBackoff] = weakref.WeakKeyDictionary()


@functools.cache  # once per process
def install() -> None:
    """Make every aiokafka client in this process back off from a node it cannot reach."""
    original: Callable[..., Awaitable[Any]] = AIOKafkaClient._get_conn

    async def _get_conn(
        self: AIOKafkaClient,
        node_id: Any,
        *,
        group: Any = ConnectionGroup.DEFAULT,
        no_hint: bool = False,
    ) -> Any:
        conn = self._conns.get((node_id, group))
        if conn is not None and conn.connected():
            return conn
        backoff = _backoffs.setdefault(self, ReconnectBackoff())
        loop = asyncio.get_running_loop()
        wait = backoff.wait_s(node_id, loop.time())
        if wait:
            await asyncio.sleep(wait)
        conn = await original(self, node_id, group=group, no_hint=no_hint)
        if conn is None:
            backoff.failed(node_id, loop.time())
        else:
            backoff.succeeded(node_id)
        return conn

    AIOKafkaClient._get_conn = _get_conn
