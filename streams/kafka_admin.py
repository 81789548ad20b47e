"""Create the topics a process needs (the broker's auto-creation is off), and name the
cluster they are on."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from streams.errors import BrokerError
from streams.parts import MAX_MESSAGE_BYTES

PARTITIONS = 8
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
    """Create every topic of `configs` that does not exist yet; the id of the cluster they
    are on (the one a process's state then belongs to, `streams.cluster_watch.expect`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerError(
            f"cannot reach Kafka at {bootstrap} (BATCHWIRE_KAFKA_BOOTSTRAP); "
            "is a broker running? `batchwire kafka up` starts a local one"
        ) from exc
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication, topic_configs=dict(config))
            for name, config in configs.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # a peer was quicker
                await admin.create_topics(missing)
        return str((await admin.describe_cluster())["cluster_id"])
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
