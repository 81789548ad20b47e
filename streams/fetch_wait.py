"""How long a fetch waits at the broker for new records: 100 ms, not faust's fixed 1,500 ms.

aiokafka keeps one fetch in flight per broker, and leaves out of it every partition whose
fetched records have not all been taken yet (it sends none while such records are younger
than its 100 ms prefetch backoff).  Once such a partition's records have all been
taken (a busy batch's results, read by the aggregator), its next records can be fetched
only after the fetch in flight returns: as soon as one of that fetch's partitions has a new
record, or at the end of the broker's wait.  When none does, the partition waits for the
whole wait with its records on the broker.  Faust fixes that wait at 1,500 ms for its
consumer, so under load the worker sat idle ~1 s at a time with hundreds of results on the
broker (bench/README.md, Throughput: 1,471 against 1,078 items/s on one 100,000-item batch);
aiokafka's own default is 500 ms.  An idle worker now sends a fetch every 100 ms instead of
every 1.5 s; 20 ms was slower again (more CPU spent on empty fetches).  (Measured when the
aggregator read every result on its own from `batchwire.results`; it now reads them in
bundles on the ledger, `streams.result_bundles`.)
"""

from __future__ import annotations

import functools
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

#: the broker's longest wait for new records before answering a fetch of a worker's consumer
FETCH_MAX_WAIT_MS = 100


@functools.cache  # once per process
def install() -> None:
    """Make faust's consumer fetch with `FETCH_MAX_WAIT_MS` (idempotent)."""
    original = AIOKafkaConsumerThread._create_worker_consumer

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> AIOKafkaConsumer:
        consumer = original(self, transport)
        # aiokafka reads it when the consumer starts (to build its fetcher); faust passes
        # a constant and has no setting for it
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
