"""A worker's `/metrics` with its item processes' reports added (`Metrics.plus`)."""

from __future__ import annotations

import json
from collections import Counter

from streams.metrics import Histogram, Metrics, render


def test_reports_add_to_the_worker_s_own_metrics() -> None:
    worker = Metrics(Counter(succeeded=2), Counter(completed=1), Histogram())
    worker.item_latency.observe(0.001)
    process = Metrics()
    process.items_processed.update(succeeded=5, failed=1)
    for seconds in (0.001, 0.3, 60.0):
        process.item_latency.observe(seconds)
    report = json.loads(json.dumps(process.item_report()))  # as it crosses the pipe

    total = worker.plus([report, report])

    assert total.items_processed == Counter(succeeded=12, failed=2)
    assert total.batches_ended == Counter(completed=1)
    assert sum(total.item_latency.counts) == 7
    assert total.item_latency.counts[0] == 3  # 1 ms, once here and once per report
    assert total.item_latency.counts[-1] == 2  # 60 s: past the last bucket
    assert abs(total.item_latency.total - (0.001 + 2 * 60.301)) < 1e-9
    assert worker.items_processed == Counter(succeeded=2)  # the worker's own are unchanged
    assert sum(worker.item_latency.counts) == 1
    text = render(0, {}, total)
    assert 'batchwire_items_processed_total{status="succeeded"} 12' in text
    assert "batchwire_item_latency_seconds_count 7" in text
