"""Round-robin between partitions in aiokafka's buffered records (KAFKA-3932, for aiokafka).

aiokafka hands out the records it has fetched partition by partition, in the order their
fetches completed, and keeps a partition first until its buffer is empty.  With a cap on
the records per poll, a partition with a full buffer (a big batch's results, ~1,300 records
in 256 KiB) therefore fills every poll until it is drained, and a record of any other
partition (another tenant's submission) waits behind the whole buffer.

Faust hands every record of one poll to its agents before it polls again, and under load
each hand-off waits for a turn of the worker's busy event loop: a poll of ~1,300 results
took 2-3 s to hand off, and tenant B's submission waited that long before the exploder saw
it.  With `streams.app` capping faust's polls at `POLL_RECORDS`, and this module moving a
partition that still has records to the back after each poll (what the Java consumer has
done since KAFKA-3932), B's submission waits behind at most one poll of A's records.
(Measured when the aggregator read every result on its own from `batchwire.results`; it
now reads them in bundles on the ledger, `streams.result_bundles`, so a poll holds far fewer
of A's records.)
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.consumer.fetcher import Fetcher

#: records per faust poll (faust's `broker_max_poll_records`). Measured with a 20,000-item
#: batch of tenant A and 10-item batches of tenant B (README, Fairness): B's p50 was ~900 ms
#: at 100, ~500 ms at 50, ~250 ms at 20; A's items/s ~5% lower at 20 than at 100, ~15% at 10
POLL_RECORDS = 20


@functools.cache  # once per process
def install() -> None:
    """Make every aiokafka consumer in this process take partitions in turn (idempotent)."""
    original: Callable[..., Awaitable[dict[Any, list[Any]]]] = Fetcher.fetched_records

    async def fetched_records(self: Fetcher, *args: Any, **kwargs: Any) -> dict[Any, list[Any]]:
        drained = await original(self, *args, **kwargs)
        # tp -> records left, in the order they are handed out (aiokafka's internals: if
        # they change, records keep aiokafka's order; tests/integration/test_fair_fetch.py
        # then fails)
        buffered = getattr(self, "_records", None)
        if not isinstance(buffered, dict):
            return drained
        for tp in drained:
            if tp in buffered:
                buffered[tp] = buffered.pop(tp)  # to the back: the others go first next time
        return drained

    Fetcher.fetched_records = fetched_records
