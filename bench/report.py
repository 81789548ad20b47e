"""The run's figures: one table with ratios on stdout, a JSON file, a PNG plot."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any

from bench.hops import HOPS

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_facts(kafka_version: str) -> dict[str, Any]:
    """What the figures depend on: cores, memory, Python, Kafka and library versions."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "kafka": kafka_version,
        "packages": {
            name: installed(name)
            for name in ("faust-streaming", "aiokafka", "fastavro", "celery", "redis")
        },
    }


def _num(value: Any, fmt: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _ratio(a: Any, b: Any) -> str:
    if not a or not b or any(isinstance(v, float) and math.isnan(v) for v in (a, b)):
        return "-"
    return f"{a / b:.2f}x"


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
    return node


def table(results: dict[str, Any]) -> str:
    """The side-by-side table: throughput with ratios, latency, RSS."""
    s = results["scenarios"]
    flags = " ".join(results.get("worker_flags") or []) or "(none)"
    lines = [
        f"batchwire worker flags: {flags}",
        f"{'':<40} {'batchwire':>11} {'raw limit':>11} {'Celery':>11} {'bw/limit':>9} "
        f"{'bw/Celery':>9}",
    ]
    for key, label in (("single", "(a) one batch, items/s"), ("many", "(b) many batches, items/s")):
        bw = _get(s, key, "items_per_s")
        lim = _get(s, "limit", key, "items_per_s")
        cel = _get(s, "celery", key, "items_per_s")
        sizes = (
            _get(s, key, "items"),
            _get(s, "limit", key, "items"),
            _get(s, "celery", key, "items"),
        )
        size = next((n for n in sizes if n), 0)
        lines.append(
            f"{label + f' [{size:,}]':<40} {_num(bw):>11} {_num(lim):>11} {_num(cel):>11} "
            f"{_ratio(bw, lim):>9} {_ratio(bw, cel):>9}"
        )
    for key, label in (("single", "(a) CPU per item, us"), ("many", "(b) CPU per item, us")):
        bw = _get(s, key, "cpu_us_per_item")
        lim = _get(s, "limit", key, "cpu_us_per_item")
        cel = _get(s, "celery", key, "cpu_us_per_item")
        if bw is None and lim is None and cel is None:
            continue
        # as for items/s, batchwire against the other: the ratio of items per CPU second
        lines.append(
            f"{label:<40} {_num(bw, ',.1f'):>11} {_num(lim, ',.1f'):>11} {_num(cel, ',.1f'):>11} "
            f"{_ratio(lim, bw):>9} {_ratio(cel, bw):>9}"
        )
    lines.append("")
    lines.append(f"{'(c) 10-item batch latency, ms':<40} {'p50':>11} {'p99':>11} {'samples':>11}")
    for label, path in (
        ("batchwire submit -> callback", ("latency", "submit_to_callback")),
        ("batchwire submit -> final status", ("latency", "submit_to_status")),
        ("Celery chord apply -> callback", ("celery", "latency", "submit_to_callback")),
    ):
        summary = _get(s, *path) or {}
        lines.append(
            f"{label:<40} {_num(summary.get('p50_ms'), ',.1f'):>11} "
            f"{_num(summary.get('p99_ms'), ',.1f'):>11} {_num(summary.get('samples')):>11}"
        )
    hops = _get(s, "latency", "hops") or {}
    if hops:
        lines.append("batchwire, each step done (Kafka timestamps after the submission), ms:")
        for name, label in HOPS.items():
            if name in hops:
                hop = hops[name]
                lines.append(
                    f"{'  ' + label:<40} {_num(hop.get('p50_ms'), ',.1f'):>11} "
                    f"{'p90 ' + _num(hop.get('p90_ms'), ',.1f'):>11} {_num(hop.get('samples')):>11}"
                )
    http = _get(s, "http") or {}
    if http:
        lines.append("")
        lines.append(
            f"{'(d) HTTP items, items/s':<40} {_num(http.get('items_per_s')):>11}   "
            f"[{http.get('items', 0):,} items, concurrency {http.get('concurrency')}]"
        )
    rss = _get(s, "rss") or {}
    if rss:
        lines.append("")
        lines.append(f"{'(e) worker RSS, MiB':<40} {'at ready':>11} {'peak':>11} {'items/s':>11}")
        base = None
        for size, run in rss.items():
            base = base or run.get("peak_rss_mib")
            growth = _ratio(run.get("peak_rss_mib"), base)
            lines.append(
                f"{f'  batch of {int(size):,} items':<40} "
                f"{_num(run.get('rss_at_ready_mib'), ',.1f'):>11} "
                f"{_num(run.get('peak_rss_mib'), ',.1f'):>11} {_num(run.get('items_per_s')):>11}"
                f"   {growth} of the smallest"
            )
    config = _get(s, "celery", "config")
    if config:
        lines.append("")
        lines.append(f"Celery worker: {config}")
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    """NaN (a figure not measured) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(results), indent=2, default=str, allow_nan=False) + "\n")


def write_png(results: dict[str, Any], path: Path) -> bool:
    """Throughput, latency and RSS as three panels; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s = results["scenarios"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.5))
    sides = ("batchwire", "raw limit", "Celery")
    plotted: list[float] = []
    for offset, key in ((-0.2, "single"), (0.2, "many")):
        values = [
            _get(s, key, "items_per_s"),
            _get(s, "limit", key, "items_per_s"),
            _get(s, "celery", key, "items_per_s"),
        ]
        bars = [v if isinstance(v, (int, float)) and not math.isnan(v) else 0 for v in values]
        plotted += bars
        ax1.bar(
            [i + offset for i in range(3)],
            bars,
            width=0.4,
            label={"single": "(a) one batch", "many": "(b) many batches"}[key],
        )
    ax1.set_xticks(range(3), sides)
    if any(v > 0 for v in plotted):  # a run without (a) and (b) has nothing to scale
        ax1.set_yscale("log")
    ax1.set_ylabel("items/s (log)")
    ax1.set_title("throughput")
    ax1.legend()
    lat = [
        ("batchwire\ncallback", _get(s, "latency", "submit_to_callback") or {}),
        ("batchwire\nstatus", _get(s, "latency", "submit_to_status") or {}),
        ("Celery\nchord", _get(s, "celery", "latency", "submit_to_callback") or {}),
    ]
    for offset, q in ((-0.2, "p50_ms"), (0.2, "p99_ms")):
        ax2.bar(
            [i + offset for i in range(len(lat))],
            [v.get(q) or 0 for _, v in lat],
            width=0.4,
            label=q.replace("_ms", ""),
        )
    ax2.set_xticks(range(len(lat)), [name for name, _ in lat])
    ax2.set_ylabel("ms")
    ax2.set_title("(c) 10-item batch latency")
    ax2.legend()
    rss = _get(s, "rss") or {}
    sizes = [int(k) for k in rss]
    ax3.plot(sizes, [rss[k].get("peak_rss_mib") or 0 for k in rss], marker="o", label="peak")
    ax3.plot(sizes, [rss[k].get("rss_at_ready_mib") or 0 for k in rss], marker="o", label="ready")
    ax3.set_xscale("log")
    ax3.set_xlabel("items in the batch")
    ax3.set_ylabel("MiB")
    ax3.set_title("(e) worker RSS")
    ax3.legend()
    fig.suptitle(f"batchwire bench {results['date']} ({results['profile']['name']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
