"""The benchmark harness's pieces at tiny sizes on the session broker: they run, count
every item and report sane figures (never a time: the bench is not a test of speed)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from bench import batchwire_runs, payloads
from bench.batchwire_runs import Pipeline
from bench.limit import run_limit
from bench.local_http import CallbackReceiver
from bench.profiles import QUICK
from bench.report import table
from bench.services import batchwire_connector, batchwire_worker, worker_env
from bench.status_watch import watch_statuses
from streams.client import KafkaBatches
from streams.localkafka.broker import free_port
from streams.validation import validate_submission

pytestmark = pytest.mark.integration


async def test_raw_limit_delivers_every_message(kafka_bootstrap: str, topic_prefix: str) -> None:
    batches = [payloads.wire_batch(payloads.new_batch_id("t"), 50) for _ in range(4)]
    run = await run_limit(kafka_bootstrap, topic_prefix, batches, time_limit_s=30)
    assert run.items == 200
    assert run.delivered == 200
    assert run.items_per_s > 0


async def test_the_limit_runs_warm_up_first_and_reports_cpu_per_item(
    kafka_bootstrap: str,
) -> None:
    from bench.run import _limit

    sizes = QUICK.with_overrides(single_items=120, many_batches=2, many_items=40, warm_up_items=30)
    # no broker pid here (the session's broker may not be ours): only the bench's CPU counts
    out = await _limit(kafka_bootstrap, 0, sizes)
    # no JVM to read: the compilers count as quiet after the first round
    assert out["warm_up"] == {"items_per_round": 30, "rounds": [out["warm_up"]["rounds"][0]]}
    assert out["warm_up"]["rounds"][0]["broker_jit_cpu_s"] == 0.0
    for key, items in (("single", 120), ("many", 80)):
        run = out[key]
        assert run["items"] == run["delivered"] == items
        assert run["cpu_s"]["broker"] == 0.0 and run["cpu_s"]["bench"] > 0  # the pipeline's
        assert run["cpu_us_per_item"] == round(run["cpu_s"]["all"] / items * 1e6, 1)


async def test_batchwire_scenarios_count_every_item(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    receiver = CallbackReceiver()
    async with receiver.serving():
        env = worker_env(
            bootstrap=kafka_bootstrap,
            prefix=topic_prefix,
            data_dir=tmp_path / "data",
            web_port=free_port(),
        )
        with (
            batchwire_worker(env, tmp_path / "worker.log") as worker,
            batchwire_connector(env, tmp_path / "connector.log"),
        ):
            async with (
                KafkaBatches(kafka_bootstrap, topic_prefix=topic_prefix) as client,
                watch_statuses(
                    kafka_bootstrap, f"{topic_prefix}batchwire.status", check=worker.check_alive
                ) as watcher,
            ):
                pipe = Pipeline(client, watcher, receiver)
                single = await batchwire_runs.one_batch(
                    pipe, payloads.noop_items(100), label="t", time_limit_s=30
                )
                many = await batchwire_runs.many_batches(pipe, 3, 20, time_limit_s=30)
                latency = await batchwire_runs.callback_latency(pipe, 2, 10, time_limit_s=30)
    assert single["ended"] == 1 and single["processed"] == single["succeeded"] == 100
    assert single["items_per_s"] > 0
    assert many["ended"] == 3 and many["processed"] == 60
    assert latency["batches"] == 2
    # both are seen by the bench (a consumer's fetch, an HTTP request): no order between them
    assert latency["submit_to_callback"]["p50_ms"] > 0
    assert latency["submit_to_status"]["p50_ms"] > 0
    # each step's output of a batch is stamped after the step before it produced its own
    hop = {name: h["p50_ms"] for name, h in latency["hops"].items()}
    assert {h["samples"] for h in latency["hops"].values()} == {2}
    assert 0 <= hop["items"] <= hop["results"] <= hop["ledger"] <= hop["status"]
    assert hop["results"] <= hop["callbacks"] <= hop["deliveries"]
    text = table({"scenarios": {"single": single, "many": many, "latency": latency}})
    assert "(a) one batch" in text and "delivery recorded (connector)" in text


@pytest.mark.skipif(
    shutil.which("redis-server") is None or importlib.util.find_spec("celery") is None,
    reason="the Celery peer needs redis-server and the bench extra (celery[redis])",
)
def test_celery_chord_counts_every_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import celery_chord
    from bench.services import redis_server

    with redis_server(tmp_path / "redis") as (url, _pid):
        monkeypatch.setenv("BENCH_REDIS_URL", url)
        with celery_chord.celery_workers(url, celery_chord.BEST, tmp_path):
            one = celery_chord.one_chord(30, time_limit_s=30)
            many = celery_chord.many_chords(3, 10, time_limit_s=30)
            latency = celery_chord.chord_latency(2, 10, time_limit_s=30)
    assert one["items"] == 30 and one["items_per_s"] > 0
    assert many["ended"] == 3
    assert latency["batches"] == 2 and latency["submit_to_callback"]["p50_ms"] > 0


def test_bench_batches_are_valid_and_outlast_every_scenario() -> None:
    body = payloads.batch("b", payloads.noop_items(3), callback_url="http://127.0.0.1:1/cb")
    sub = validate_submission(body, allowed_tenants=frozenset({payloads.TENANT}), max_items=10)
    assert len(sub.items) == 3
    assert sub.deadline_s == payloads.DEADLINE_S > 1800  # the contract's default
