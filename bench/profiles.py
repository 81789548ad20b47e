"""How big each scenario is: the `--quick` profile and the full profile of issue 8."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

#: Every scenario, in the order they run; `--only` / `--skip` pick among these names.
SCENARIOS = (
    "limit",  # the raw aiokafka pipeline, (a) and (b) sizes
    "single",  # (a) one batch of N no-op items
    "many",  # (b) M batches of K no-op items
    "latency",  # (c) 10-item batches one at a time, callback through the connector
    "http",  # (d) HTTP items against a local target
    "rss",  # (e) peak worker RSS per batch size, a fresh worker each
    "celery",  # the Celery chord: (a), (b) and (c)-style latency
)


#: (c)'s untimed batches: the connector's first request opens its connections, and the first
#: message on each partition of a fresh topic (the bench's topics and the tables' changelogs
#: are new in every run) can wait 60-400 ms for the broker to answer (a probe on the local
#: broker: first writes to 48 new partitions, p99 408 ms; the same writes again, 7 ms), a cost
#: a long-lived deployment paid once, long before. Batches land on partitions by their id:
#: 50 reach every one of 8 partitions with ~99% probability.
LATENCY_WARM_UP = 50


#: Untimed rounds through the raw limit, and through batchwire, before (a) and (b): a freshly
#: started broker's JVM compiles its hot paths during its first minute of load, a cost a
#: long-lived deployment paid once, long before. Its compiler threads took 4.2, 3.4 and 1.0 s
#: of CPU during three 100,000-item batches in a row (the broker's whole CPU: 6.9, 5.8 and
#: 3.1 s), ~40% of a core taken from the worker on a 2-core machine. Rounds go on until a
#: round's compiling stays under `WARM_UP_QUIET_JIT_S`, at most `WARM_UP_ROUNDS` of them.
WARM_UP_ROUNDS = 6
WARM_UP_QUIET_JIT_S = 0.3


@dataclass(frozen=True)
class Profile:
    """Sizes of one run; every one can be changed from the command line."""

    name: str
    single_items: int  # (a)
    many_batches: int  # (b) M
    many_items: int  # (b) K
    latency_batches: int  # (c) batches timed (after `LATENCY_WARM_UP`)
    latency_items: int  # (c) items per batch
    http_items: int  # (d)
    http_concurrency: int  # (d) the worker's --concurrency
    rss_sizes: tuple[int, ...]  # (e)
    warm_up_items: int  # items per untimed warm-up round (`WARM_UP_ROUNDS`)
    min_rate: float = 50.0  # items/s below which a scenario gives up (its time bound)

    def time_limit(self, items: int) -> float:
        """Seconds a scenario of `items` items may take before it stops by itself."""
        return 60.0 + items / self.min_rate

    def latency_time_limit(self) -> float:
        """Seconds (c) may take: each small batch is allowed 5 s."""
        return 60.0 + (self.latency_batches + LATENCY_WARM_UP) * 5.0

    def with_overrides(self, **changes: Any) -> Profile:
        """This profile with the sizes given on the command line; named `custom` when any
        size changed, so its results never pass for the quick or full profile's."""
        given = {k: v for k, v in changes.items() if v is not None and getattr(self, k) != v}
        return replace(self, **given, name="custom") if given else self


QUICK = Profile(
    name="quick",
    single_items=3_000,
    many_batches=20,
    many_items=100,
    latency_batches=20,
    latency_items=10,
    http_items=500,
    http_concurrency=64,
    rss_sizes=(1_000, 3_000),
    warm_up_items=1_000,
)

FULL = Profile(
    name="full",
    single_items=100_000,
    many_batches=1_000,
    many_items=100,
    latency_batches=200,
    latency_items=10,
    http_items=10_000,
    http_concurrency=64,
    rss_sizes=(10_000, 100_000, 1_000_000),
    warm_up_items=50_000,
)
