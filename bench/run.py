"""`scripts/bench` / `python -m bench`: every scenario of issue 8 in one run, one table.

Starts its own Kafka broker (and Redis for Celery) on 127.0.0.1, runs the scenarios chosen
with `--only` / `--skip`, prints the side-by-side table, writes
`bench/results/<date>.json` (`<date>-quick.json` for `--quick`, `<date>-custom.json` when
a size flag changed the profile, more words for `--only`, `--skip` and `--worker-flags`:
`results_stem`) and a PNG beside it.  It is
a benchmark, not a test: a slow figure never fails it; a scenario that breaks is reported
as an error in the table and the JSON, and the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench import batchwire_runs, celery_chord, payloads
from bench.batchwire_runs import Pipeline, new_prefix
from bench.cpu import CpuMeter, jit_cpu_s
from bench.limit import run_limit
from bench.local_http import CallbackReceiver, fast_target
from bench.profiles import (
    FULL,
    QUICK,
    SCENARIOS,
    WARM_UP_QUIET_JIT_S,
    WARM_UP_ROUNDS,
    Profile,
)
from bench.report import RESULTS_DIR, machine_facts, table, write_json, write_png
from bench.services import (
    batchwire_connector,
    batchwire_worker,
    kafka_broker,
    memory_kib,
    redis_server,
    worker_env,
)
from bench.status_watch import watch_statuses
from streams.client import KafkaBatches
from streams.localkafka.broker import free_port

#: the scenarios whose CPU per item is measured, on every side: (c) times single batches, and
#: (d)'s HTTP target runs in the bench's own process
CPU_SCENARIOS = ("single", "many")


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _record(
    into: dict[str, Any],
    name: str,
    run: Callable[[], Awaitable[dict[str, Any]]],
    cpu: dict[str, list[int]] | None = None,
) -> None:
    """Run one scenario; a failure is recorded as its result and the run goes on. With `cpu`
    (the processes taking part besides the bench's own), its CPU per item is added."""
    _say(f"{name} ...")
    try:
        meter = CpuMeter.start(cpu) if cpu is not None else None
        into[name] = await run()
        if meter is not None:
            into[name].update(meter.used(into[name]["items"]))
        _say(f"{name}: {_brief(into[name])}")
    except Exception as exc:
        traceback.print_exc()
        into[name] = {"error": f"{type(exc).__name__}: {exc}"}


def _brief(result: dict[str, Any]) -> str:
    if "items_per_s" in result:
        return f"{result.get('items', 0):,} items, {result['items_per_s']:,.0f} items/s"
    if "submit_to_callback" in result:
        return f"p50 {result['submit_to_callback']['p50_ms']:.1f} ms"
    if "rounds" in result:
        compiling = ", ".join(f"{r['broker_jit_cpu_s']:.1f}" for r in result["rounds"])
        return (
            f"{len(result['rounds'])} x {result['items_per_round']:,} items, "
            f"the broker's JIT {compiling} s of CPU"
        )
    return ", ".join(f"{k}: {_brief(v)}" for k, v in result.items() if isinstance(v, dict))


async def _warm_up(
    broker_pid: int, profile: Profile, run_round: Callable[[], Awaitable[float]]
) -> dict[str, Any]:
    """Untimed rounds of `profile.warm_up_items` items (`run_round` gives a round's items/s)
    until the broker's JIT compilers go quiet (`bench.profiles.WARM_UP_ROUNDS`)."""
    rounds: list[dict[str, float]] = []
    for _ in range(WARM_UP_ROUNDS):
        before = jit_cpu_s(broker_pid)
        items_per_s = await run_round()
        compiling = jit_cpu_s(broker_pid) - before
        rounds.append({"items_per_s": round(items_per_s), "broker_jit_cpu_s": round(compiling, 2)})
        if compiling < WARM_UP_QUIET_JIT_S:
            break
    return {"items_per_round": profile.warm_up_items, "rounds": rounds}


async def _limit(bootstrap: str, broker_pid: int, profile: Profile) -> dict[str, Any]:
    single = [payloads.wire_batch(payloads.new_batch_id("limit"), profile.single_items)]
    many = [
        payloads.wire_batch(payloads.new_batch_id("limit"), profile.many_items)
        for _ in range(profile.many_batches)
    ]
    out: dict[str, Any] = {}

    async def warm_up_round() -> float:
        items = profile.warm_up_items
        batch = payloads.wire_batch(payloads.new_batch_id("limit"), items)
        run = await run_limit(
            bootstrap, new_prefix("limit"), [batch], time_limit_s=profile.time_limit(items)
        )
        return run.items_per_s

    out["warm_up"] = await _warm_up(broker_pid, profile, warm_up_round)
    for key, batches in (("single", single), ("many", many)):
        meter = CpuMeter.start({"broker": [broker_pid]})  # the pipeline is the bench's own
        run = await run_limit(
            bootstrap,
            new_prefix("limit"),
            batches,
            time_limit_s=profile.time_limit(sum(len(b.results) for b in batches)),
        )
        out[key] = {
            **dataclasses.asdict(run),
            "items_per_s": run.items_per_s,
            **meter.used(run.items),
        }
    return out


async def _batchwire(
    bootstrap: str,
    broker_pid: int,
    workdir: Path,
    profile: Profile,
    chosen: set[str],
    out: dict[str, Any],
    worker_flags: tuple[str, ...],
) -> None:
    """(a)-(d) on one worker (and the connector for (c))."""
    receiver = CallbackReceiver()
    async with fast_target() as target_url, receiver.serving():
        prefix = new_prefix("main")
        env = worker_env(
            bootstrap=bootstrap,
            prefix=prefix,
            data_dir=workdir / "main-data",
            web_port=free_port(),
            target_url=target_url,
        )
        connector = (
            batchwire_connector(env, workdir / "connector.log")
            if "latency" in chosen
            else contextlib.nullcontext()
        )
        _say("starting a worker")
        with (
            batchwire_worker(
                env,
                workdir / "worker-main.log",
                concurrency=profile.http_concurrency,
                flags=worker_flags,
            ) as worker,
            connector as connector_process,
        ):
            async with (
                KafkaBatches(bootstrap, topic_prefix=prefix) as client,
                watch_statuses(
                    bootstrap, f"{prefix}batchwire.status", check=worker.check_alive
                ) as watcher,
            ):
                pipe = Pipeline(client, watcher, receiver)
                p = profile
                runs = {
                    "single": partial(batchwire_runs.one_batch, pipe,
                                      payloads.noop_items(p.single_items), label="single",
                                      time_limit_s=p.time_limit(p.single_items)),
                    "many": partial(batchwire_runs.many_batches, pipe, p.many_batches,
                                    p.many_items,
                                    time_limit_s=p.time_limit(p.many_batches * p.many_items)),
                    "latency": partial(batchwire_runs.callback_latency, pipe, p.latency_batches,
                                       p.latency_items, time_limit_s=p.latency_time_limit()),
                    "http": partial(_http, pipe, p),
                }  # fmt: skip
                cpu = {"worker": [worker.pid], "broker": [broker_pid]}
                if connector_process is not None:
                    cpu["connector"] = [connector_process.pid]
                if chosen & set(CPU_SCENARIOS):

                    async def warm_up_round() -> float:
                        run = await batchwire_runs.one_batch(
                            pipe,
                            payloads.noop_items(p.warm_up_items),
                            label="warm-up",
                            time_limit_s=p.time_limit(p.warm_up_items),
                        )
                        return float(run["items_per_s"])

                    await _record(out, "warm_up", partial(_warm_up, broker_pid, p, warm_up_round))
                for name, run in runs.items():
                    if name in chosen:
                        await _record(out, name, run, cpu if name in CPU_SCENARIOS else None)
            out["main_worker_memory_kib"] = memory_kib(worker.pid)


async def _http(pipe: Pipeline, profile: Profile) -> dict[str, Any]:
    result = await batchwire_runs.one_batch(
        pipe,
        payloads.http_items(profile.http_items),
        label="http",
        time_limit_s=profile.time_limit(profile.http_items),
    )
    return {**result, "concurrency": profile.http_concurrency}


async def _rss(
    bootstrap: str, workdir: Path, profile: Profile, worker_flags: tuple[str, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in profile.rss_sizes:
        run = partial(
            batchwire_runs.peak_rss,
            bootstrap,
            workdir,
            size,
            time_limit_s=profile.time_limit(size),
            worker_flags=worker_flags,
        )
        await _record(out, str(size), run)
    return out


async def _kafka_side(
    bootstrap: str,
    broker_pid: int,
    workdir: Path,
    profile: Profile,
    chosen: set[str],
    out: dict[str, Any],
    worker_flags: tuple[str, ...],
) -> None:
    if "limit" in chosen:
        await _record(out, "limit", lambda: _limit(bootstrap, broker_pid, profile))
    if chosen & {"single", "many", "latency", "http"}:
        await _batchwire(bootstrap, broker_pid, workdir, profile, chosen, out, worker_flags)
    if "rss" in chosen:
        await _record(out, "rss", lambda: _rss(bootstrap, workdir, profile, worker_flags))


def _celery(workdir: Path, profile: Profile, tune: bool) -> dict[str, Any]:
    """The Celery chord's (a), (b) and (c), on a private redis-server."""
    p = profile
    out: dict[str, Any] = {}
    with redis_server(workdir / "redis") as (url, redis_pid):
        os.environ["BENCH_REDIS_URL"] = url  # read by bench.celery_app when first imported
        if tune:
            out["tuning"] = _celery_tune(url, workdir, p)
        config = celery_chord.BEST
        out["config"] = config.label()
        _say(f"Celery chord ({config.label()}) ...")
        with celery_chord.celery_workers(url, config, workdir) as worker_pids:
            runs = {
                "single": partial(celery_chord.one_chord, p.single_items,
                                  time_limit_s=p.time_limit(p.single_items)),
                "many": partial(celery_chord.many_chords, p.many_batches, p.many_items,
                                time_limit_s=p.time_limit(p.many_batches * p.many_items)),
                "latency": partial(celery_chord.chord_latency, p.latency_batches,
                                   p.latency_items, time_limit_s=p.latency_time_limit()),
            }  # fmt: skip
            for name, run in runs.items():
                try:
                    measured = name in CPU_SCENARIOS
                    cpu = {"celery": worker_pids, "redis": [redis_pid]}
                    meter = CpuMeter.start(cpu) if measured else None
                    out[name] = run()
                    if meter is not None:
                        out[name].update(meter.used(out[name]["items"]))
                    _say(f"Celery {name}: {_brief(out[name])}")
                except Exception as exc:
                    traceback.print_exc()
                    out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _celery_tune(url: str, workdir: Path, profile: Profile) -> list[dict[str, Any]]:
    """Each candidate worker configuration on one chord and a few 10-task chords."""
    tasks = min(profile.single_items, 3000)
    rows = []
    for config in celery_chord.CANDIDATES:
        with celery_chord.celery_workers(url, config, workdir):
            chord = celery_chord.one_chord(tasks, time_limit_s=profile.time_limit(tasks))
            latency = celery_chord.chord_latency(20, 10, time_limit_s=120)
        rows.append({"config": config.label(), "chord": chord, "latency": latency})
        _say(
            f"tune {config.label()}: {chord['items_per_s']:,.0f} items/s, "
            f"p50 {latency['submit_to_callback']['p50_ms']:.0f} ms"
        )
    return rows


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a 3-5 minute check)")
    parser.add_argument("--only", default="", help=f"comma-separated among {','.join(SCENARIOS)}")
    parser.add_argument("--skip", default="", help="comma-separated scenarios to leave out")
    parser.add_argument("--single-items", type=int, help="(a) items in the one batch")
    parser.add_argument("--many-batches", type=int, help="(b) how many batches")
    parser.add_argument("--many-items", type=int, help="(b) items per batch")
    parser.add_argument("--latency-batches", type=int, help="(c) batches timed")
    parser.add_argument("--http-items", type=int, help="(d) HTTP items")
    parser.add_argument("--http-concurrency", type=int, help="(d) the worker's --concurrency")
    parser.add_argument("--rss-sizes", help="(e) comma-separated batch sizes")
    parser.add_argument(
        "--worker-flags",
        default="",
        help="more flags for every batchwire worker, e.g. '--processes 1 --release-window 1000'",
    )
    parser.add_argument("--celery-tune", action="store_true", help="try Celery configurations")
    parser.add_argument("--workdir", type=Path, help="logs and data (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where results go")
    return parser.parse_args(argv)


def _chosen(only: str, skip: str) -> set[str]:
    def names(text: str) -> set[str]:
        found = {n.strip() for n in text.split(",") if n.strip()}
        unknown = found - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        return found

    return (names(only) or set(SCENARIOS)) - names(skip)


def results_stem(
    out: Path, today: str, profile: str, chosen: set[str], worker_flags: tuple[str, ...]
) -> str:
    """The results' file name, e.g. `2026-12-03-skip-rss-processes-1-release-window-1000`:
    the date, the profile unless full, the scenarios unless all, the worker's flags, and
    `-run2`, `-run3`... rather than replace the results of an earlier run."""
    words = [today] + ([] if profile == "full" else [profile])
    if chosen != set(SCENARIOS):
        skipped = [name for name in SCENARIOS if name not in chosen]
        ran = [name for name in SCENARIOS if name in chosen]
        words.append(
            "skip-" + "-".join(skipped) if len(skipped) < len(ran) else "only-" + "-".join(ran)
        )
    words += [flag.lstrip("-") for flag in worker_flags]
    stem, run = "-".join(words), 1
    while (out / f"{stem}{'' if run == 1 else f'-run{run}'}.json").exists():
        run += 1
    return stem if run == 1 else f"{stem}-run{run}"


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    profile = (QUICK if args.quick else FULL).with_overrides(
        single_items=args.single_items,
        many_batches=args.many_batches,
        many_items=args.many_items,
        latency_batches=args.latency_batches,
        http_items=args.http_items,
        http_concurrency=args.http_concurrency,
        rss_sizes=tuple(int(s) for s in args.rss_sizes.split(",")) if args.rss_sizes else None,
    )
    chosen = _chosen(args.only, args.skip)
    worker_flags = tuple(shlex.split(args.worker_flags))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="batchwire-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    results: dict[str, Any] = {
        "date": today,
        "command": shlex.join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])]),
        "profile": dataclasses.asdict(profile),
        "worker_flags": list(worker_flags),
        "scenarios_run": sorted(chosen, key=SCENARIOS.index),
        "scenarios": {},
    }
    _say(f"profile {profile.name}; logs in {workdir}")
    started = time.monotonic()
    kafka_version = "-"
    if chosen - {"celery"}:
        _say("starting a Kafka broker")
        with kafka_broker(workdir / "kafka") as (bootstrap, kafka_version, broker_pid):
            _say(f"broker at {bootstrap}")
            asyncio.run(
                _kafka_side(
                    bootstrap,
                    broker_pid,
                    workdir,
                    profile,
                    chosen,
                    results["scenarios"],
                    worker_flags,
                )
            )
    results["machine"] = machine_facts(kafka_version)
    if "celery" in chosen:
        try:
            results["scenarios"]["celery"] = _celery(workdir, profile, args.celery_tune)
        except Exception as exc:
            traceback.print_exc()
            results["scenarios"]["celery"] = {"error": f"{type(exc).__name__}: {exc}"}
    results["wall_s"] = round(time.monotonic() - started, 1)
    print(table(results))
    stem = results_stem(args.out, today, profile.name, chosen, worker_flags)
    write_json(results, args.out / f"{stem}.json")
    png = write_png(results, args.out / f"{stem}.png")
    print(f"\nwrote {args.out / f'{stem}.json'}" + (f" and {stem}.png" if png else ""))
