"""Process-local metrics, rendered as Prometheus text by `GET /metrics`.

Counters count what this worker did since it started (Prometheus sums over workers).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def render(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        running += self.counts[-1]
        lines += [f'{name}_bucket{{le="+Inf"}} {running}', f"{name}_sum {self.total:.6f}"]
        lines.append(f"{name}_count {running}")
        return lines


@dataclass
class Metrics:
    items_processed: Counter[str] = field(default_factory=Counter)  # by item status
    batches_ended: Counter[str] = field(default_factory=Counter)  # by final status
    item_latency: Histogram = field(default_factory=Histogram)

    def item_report(self) -> dict[str, Any]:
        """The item metrics as an item-processor process reports them to its worker
        (`streams.item_processes`), as JSON."""
        return {
            "items_processed": dict(self.items_processed),
            "latency_counts": list(self.item_latency.counts),
            "latency_total": self.item_latency.total,
        }

    def plus(self, reports: Iterable[dict[str, Any]]) -> Metrics:
        """These metrics with the item processes' latest `item_report`s added."""
        latency = self.item_latency
        total = Metrics(
            Counter(self.items_processed),
            Counter(self.batches_ended),
            Histogram(latency.buckets, list(latency.counts), latency.total),
        )
        for report in reports:
            total.items_processed.update(report["items_processed"])
            counts = zip(total.item_latency.counts, report["latency_counts"], strict=True)
            total.item_latency.counts = [mine + theirs for mine, theirs in counts]
            total.item_latency.total += report["latency_total"]
        return total


metrics = Metrics()


def render(active_batches: int, lag: dict[str, int], shown: Metrics = metrics) -> str:
    """The Prometheus text exposition of this worker's metrics (`shown`: with its item
    processes' reports, `Metrics.plus`)."""
    out = [
        "# HELP batchwire_items_processed_total Items this worker ran, by result status.",
        "# TYPE batchwire_items_processed_total counter",
        *(
            f'batchwire_items_processed_total{{status="{s}"}} {n}'
            for s, n in sorted(shown.items_processed.items())
        ),
        "# HELP batchwire_batches_total Batches this worker's aggregator ended, by status.",
        "# TYPE batchwire_batches_total counter",
        *(
            f'batchwire_batches_total{{status="{s}"}} {n}'
            for s, n in sorted(shown.batches_ended.items())
        ),
        "# HELP batchwire_batches_active Running batches on this worker's partitions.",
        "# TYPE batchwire_batches_active gauge",
        f"batchwire_batches_active {active_batches}",
        "# HELP batchwire_item_latency_seconds Time to run one item.",
        "# TYPE batchwire_item_latency_seconds histogram",
        *shown.item_latency.render("batchwire_item_latency_seconds"),
        "# HELP batchwire_consumer_lag Messages not yet consumed, per topic.",
        "# TYPE batchwire_consumer_lag gauge",
        *(f'batchwire_consumer_lag{{topic="{t}"}} {n}' for t, n in sorted(lag.items())),
    ]
    return "\n".join(out) + "\n"
