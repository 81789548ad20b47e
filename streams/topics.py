"""Every topic of the pipeline, named as in the contract (prefix + name).

All topics share one partition count so that topics keyed by `batch_id`
(`results`, `ledger`) are co-partitioned with the aggregator's tables.
Values travel as raw bytes: Avro single-object encoding carries its own schema
fingerprint, and `streams.codec` decodes it (JSON is accepted on `batches`).
"""

from __future__ import annotations

from faust.types import TopicT

from streams import cluster_watch
from streams.app import app, settings
from streams.kafka_admin import PARTITIONS, ensure_topics, topic_config

#: name -> topic config, for `declare_topics`.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {}


def _topic(
    name: str, *, compacted: bool = False, retention_days: int = 7, maxsize: int | None = None
) -> TopicT:
    config = topic_config(compacted=compacted, retention_days=retention_days)
    TOPIC_CONFIGS[settings.topic(name)] = config
    topic = app.topic(
        settings.topic(name),
        partitions=PARTITIONS,
        key_type=str,
        key_serializer="raw",
        value_serializer="raw",
        config=config,
    )
    topic.maxsize = maxsize  # `app.topic` takes `maxsize` but does not pass it on (0.15)
    return topic


#: Submissions faust may hold for the exploder, taken from Kafka ahead of it. Faust's
#: default (4,096 events per topic) let a 1,000,000-item batch's ~1 MB parts pile up while
#: the exploder worked (tracemalloc, exploder slowed down: ~17 MiB of raw parts), and the
#: worker's peak RSS was 138-147 MiB; with 8 it was 115, with 4 112-113 (first 90 s of the
#: batch; `scripts/bench --only rss`: 1.18x from 10,000 to 1,000,000 items). The queue is
#: shared by the topic's partitions, so a part queued here also delays other tenants'
#: submissions: fewer is fairer. When it is full, faust's conductor waits before it hands
#: out further records of any topic; 8 leaves room for that.
BATCHES_BUFFER = 8

batches = _topic("batchwire.batches", maxsize=BATCHES_BUFFER)
items = _topic("batchwire.items")
results = _topic("batchwire.results")
status = _topic("batchwire.status", compacted=True)
callbacks = _topic("batchwire.callbacks")
deliveries = _topic("batchwire.deliveries")
rejected = _topic("batchwire.rejected")
callbacks_dlq = _topic("batchwire.callbacks.dlq", retention_days=30)
#: Internal: what the aggregator reads (a part registered, result bundles, cancel, ticks).
ledger = _topic("batchwire.ledger")

CONTRACT_TOPICS = (batches, items, results, status, callbacks, deliveries, rejected, callbacks_dlq)
#: Internal, compacted: per-batch controls every processor reads (see `streams.controls`).
controls = _topic("batchwire.controls", compacted=True)


async def declare_topics(bootstrap: str) -> str:
    """Create every topic of the pipeline, and the tables' changelogs, that does not exist
    yet; the cluster's id (`kafka_admin.ensure_topics`).  Creating the changelogs here (not
    lazily, as Faust does) means they exist, with their partitions and a 10 MB message
    limit, before the first table write."""
    changelogs = {
        table.changelog_topic.get_topic_name(): topic_config(compacted=True)
        for table in app.tables.values()
    }
    return await ensure_topics(bootstrap, {**TOPIC_CONFIGS, **changelogs}, PARTITIONS)


@app.task
async def watch_cluster() -> None:
    """End the worker when the cluster is another one, or its topics are gone
    (`streams.cluster_watch`)."""
    await cluster_watch.exit_on_problem()
