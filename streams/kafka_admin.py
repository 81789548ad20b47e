"""Create the topics a process needs (the broker's auto-creation is off), and name the
cluster they are on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from streams.errors import BrokerError
from streams.parts import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

PARTITIONS = 8
#: rounds of "list the topics, create the missing ones": the broker answers a create it
#: could not finish in time (a busy controller) with an error code, not an exception, and
#: a topic that is not there when a process starts is one it waits for in vain
CREATE_ATTEMPTS = 4
DAY_MS = 24 * 3600 * 1000


def topic_config(*, compacted: bool = False, retention_days: float = 7) -> dict[str, str]:
    config = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    if compacted:
        config["cleanup.policy"] = "compact"
    else:
        config["retention.ms"] = str(int(retention_days * DAY_MS))
    return config


async def ensure_topics(
    bootstrap: str,
    configs: Mapping[str, Mapping[str, str]],
    partitions: int = PARTITIONS,
    replication: int = 1,
) -> str:
    """Create every topic of `configs` that does not exist yet, and check that they all do;
    the id of the cluster they are on (the one a process's state then belongs to,
    `streams.cluster_watch.expect`). `BrokerError` when some cannot be created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerError(
            f"cannot reach Kafka at {bootstrap} (BATCHWIRE_KAFKA_BOOTSTRAP); "
            "is a broker running? `batchwire kafka up` starts a local one"
        ) from exc
    try:
        for attempt in range(CREATE_ATTEMPTS + 1):
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name, partitions, replication, topic_configs=dict(config))
                for name, config in configs.items()
                if name not in existing
            ]
            if not missing:
                return str((await admin.describe_cluster())["cluster_id"])
            if attempt == CREATE_ATTEMPTS:
                break
            if attempt:
                await asyncio.sleep(attempt)  # a creation timed out: it may still land
            errors = {}
            with contextlib.suppress(TopicAlreadyExistsError):  # a peer was quicker
                response = await admin.create_topics(missing)
                errors = {
                    name: code
                    for name, code, *_ in response.topic_errors
                    if code not in (0, TopicAlreadyExistsError.errno)
                }
            if errors:
                log.warning("creating topics failed (error codes %s); trying again", errors)
        raise BrokerError(f"could not create the topics {sorted(n.name for n in missing)}")
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of `topic` ([] when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        return []
    return sorted(p["partition"] for p in described["partitions"])
