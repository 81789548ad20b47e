"""What the HTTP API writes to Kafka: awaited, bounded in time, and answered 503
`unavailable` when Kafka does not take it.

A request has no event that Kafka would redeliver, so a failed send must not stop the
worker (as a failed send while handling an event does, `streams.publish`): the client is
told instead, and told that sending the same request again is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka.errors import KafkaError
from faust.types import TopicT

from streams.api.errors import RETRY_AFTER_S, ApiError
from streams.publish import publish

#: how long one message may wait for the producer, and then the last ones for the broker:
#: below the 30 s a client usually waits for an answer (`streams.client`)
SEND_TIMEOUT_S = 20.0


async def send_all(
    topic: TopicT,
    key: bytes,
    values: Iterable[bytes],
    what: str,
    details: list[dict[str, Any]] | None = None,
) -> None:
    """Send `values` under `key` and wait until the broker has every one; `unavailable`
    naming `what` (the batch, the cancel), with `details`, when it does not take them in
    time."""
    sent: list[asyncio.Future[Any]] = []
    try:
        for value in values:
            future = await asyncio.wait_for(
                publish(topic, key, value, stop_on_fault=False), SEND_TIMEOUT_S
            )
            future.add_done_callback(_retrieve)  # one that fails after the answer is not logged
            sent.append(future)
        await asyncio.wait_for(asyncio.gather(*sent), SEND_TIMEOUT_S)
    except (TimeoutError, KafkaError) as exc:
        reason = f"no answer in {SEND_TIMEOUT_S:.0f} s" if isinstance(exc, TimeoutError) else exc
        raise unavailable(f"Kafka did not take {what} ({reason})", details) from exc


def unavailable(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    """503: Kafka or another worker did not answer; the same request may be sent again."""
    return ApiError("unavailable", message, details, headers={"Retry-After": str(RETRY_AFTER_S)})


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
