"""A real single-node Apache Kafka (KRaft) on 127.0.0.1, for development, tests and CI.

These machines have no Docker engine, so the broker jars are resolved from Maven Central
with Maven (`pom.xml` beside this file) into a cache outside the repository, once:
`~/.cache/batchwire/kafka-<version>/libs` (or `$BATCHWIRE_CACHE_DIR/kafka-<version>/libs`).
Then `kafka.tools.StorageTool format` formats the log dir and `kafka.Kafka` runs one
combined broker+controller.  A broker counts as ready when a metadata request answers,
not when its port opens.
"""

from streams.localkafka.broker import DEFAULT_KAFKA_VERSION, LocalBroker, fetch_kafka

__all__ = ["DEFAULT_KAFKA_VERSION", "LocalBroker", "fetch_kafka"]
