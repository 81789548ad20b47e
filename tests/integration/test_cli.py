"""The `batchwire` command line against a real worker."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from pathlib import Path

import pytest

from streams.localkafka.broker import free_port
from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_submit_watch_and_results(worker_factory: WorkerFactory, tmp_path: Path) -> None:
    worker = worker_factory()
    api = ("--url", worker.url, "--key", "key-acme")
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "items": [
                    {"id": f"j{i}", "namespace": "batchwire", "action": "echo", "params": {"i": i}}
                    for i in range(20)
                ]
            }
        )
    )
    code, out, err = await cli(
        "submit", str(batch), "--tenant", "acme", "--batch-id", "cli-1", *api
    )
    assert code == 0, err
    assert out.strip() == "cli-1"
    code, out, err = await cli("status", "cli-1", "--watch", *api)
    assert code == 0, err
    last = out.strip().split("\r")[-1]
    assert "20/20" in last and "100%" in last and last.endswith("completed")

    table = tmp_path / "results.csv"
    code, _, err = await cli("results", "cli-1", "--format", "csv", "-o", str(table), *api)
    assert code == 0 and err.strip() == "20 results"
    rows = list(csv.DictReader(table.open()))
    assert [r["item_id"] for r in rows] == [f"j{i}" for i in range(20)]
    assert json.loads(rows[3]["output"]) == {"i": 3}

    lines = tmp_path / "items.ndjson"
    lines.write_text(
        "\n".join(
            json.dumps({"namespace": "batchwire", "action": "noop", "params": {"n": n}})
            for n in range(50)
        )
    )
    code, out, err = await cli("submit", str(lines), "--tenant", "acme", *api)
    assert code == 0, err
    code, out, err = await cli("status", out.strip(), "--watch", *api)
    assert out.strip().split("\r")[-1].endswith("completed")
    whole = tmp_path / "whole.json"  # batch fields before and after the items, streamed
    whole.write_text(
        json.dumps(
            {
                "metadata": {"asyncId": "w-9", "price": 1.5},
                "items": [
                    {"id": f"w{i}", "namespace": "batchwire", "action": "echo", "params": {"i": i}}
                    for i in range(30)
                ],
                "headers": {"X-Trace": "t"},
                "batch_id": "cli-json",
            }
        )
    )
    # `--watch` started before the batch exists waits for it (status is 404 until then)
    watching = asyncio.create_task(cli("status", "cli-json", "--watch", *api))
    await asyncio.sleep(1)
    code, out, err = await cli("submit", str(whole), "--tenant", "acme", *api)
    assert code == 0 and out.strip() == "cli-json", err
    code, out, err = await watching
    assert code == 0 and out.strip().split("\r")[-1].endswith("completed"), err
    code, out, _ = await cli("status", "cli-json", *api)
    assert json.loads(out)["metadata"] == {"asyncId": "w-9", "price": 1.5}
    assert json.loads(out)["counters"]["succeeded"] == 30

    big = tmp_path / "big-metadata.json"  # more than a URL can carry (the server: 16 KB)
    noop = {"namespace": "batchwire", "action": "noop", "params": {}}
    big.write_text(json.dumps({"metadata": {"pad": "m" * 20_000}, "items": [noop]}))
    code, out, err = await cli("submit", str(big), "--tenant", "acme", "--batch-id", "big", *api)
    assert code == 0 and out.strip() == "big", err
    for _ in range(100):
        code, out, _ = await cli("status", "big", *api)
        if code == 0:
            break
    assert json.loads(out)["metadata"] == {"pad": "m" * 20_000}

    code, out, _ = await cli("results", "cli-1", "--status", "succeeded", *api)
    assert len(out.splitlines()) == 20 and json.loads(out.splitlines()[0])["item_id"] == "j0"


async def test_tenant_option_and_cancel(
    worker_factory: WorkerFactory, target_api: TargetApi, tmp_path: Path
) -> None:
    """A key holding two tenants that both have batch "twin": `--tenant` picks one (without
    it the API answers for the first of the key's tenants). `cancel` stops a running batch."""
    worker = worker_factory(
        {
            "BATCHWIRE_TENANT_KEYS": "acme=key-both;globex=key-both",
            "BATCHWIRE_TARGET_URLS": f"globex={target_api.url}",
        }
    )
    api = ("--url", worker.url, "--key", "key-both")
    for tenant, count in (("acme", 4), ("globex", 2)):
        batch = tmp_path / f"{tenant}.json"
        echo = {"namespace": "batchwire", "action": "echo", "params": {"t": tenant}}
        batch.write_text(json.dumps({"items": [echo] * count}))
        code, _, err = await cli(
            "submit", str(batch), "--tenant", tenant, "--batch-id", "twin", *api
        )
        assert code == 0, err
        code, out, err = await cli("status", "twin", "--tenant", tenant, "--watch", *api)
        assert code == 0 and out.strip().split("\r")[-1].endswith("completed"), err
    code, out, err = await cli("status", "twin", "--tenant", "globex", *api)
    assert code == 0, err
    assert json.loads(out)["counters"]["posted"] == 2
    code, out, err = await cli("results", "twin", "--tenant", "globex", *api)
    assert code == 0 and err.strip() == "2 results", err
    assert {json.loads(line)["output"]["t"] for line in out.splitlines()} == {"globex"}

    slow = tmp_path / "slow.json"
    items = [{"method": "GET", "path": f"/slow/300?i={i}", "group": "g"} for i in range(30)]
    slow.write_text(json.dumps({"items": items}))
    code, _, err = await cli("submit", str(slow), "--tenant", "globex", "--batch-id", "cx", *api)
    assert code == 0, err
    for _ in range(50):  # not known until the aggregator has its part
        code, out, err = await cli("cancel", "cx", "--tenant", "globex", *api)
        if code == 0:
            break
    assert code == 0, err
    assert json.loads(out)["batch_id"] == "cx"
    code, out, err = await cli("status", "cx", "--tenant", "globex", "--watch", *api)
    progress, errors = out.strip().split("\n")  # the bar's last line, then the item errors
    assert code == 0 and progress.split("\r")[-1].endswith("cancelled"), err
    assert "the batch was cancelled before this item started" in errors
    assert len(target_api.seen) < 10


async def test_clear_messages(worker_factory: WorkerFactory, tmp_path: Path) -> None:
    worker = worker_factory()
    api = ("--url", worker.url, "--key", "key-acme")
    broken = tmp_path / "broken.json"
    broken.write_text('{"items": [\n  {"id": 1,}\n]}')
    code, _, err = await cli("submit", str(broken), "--tenant", "acme", *api)
    assert code == 1 and "line 2, column 12: Expecting property name" in err

    bad_line = tmp_path / "bad.ndjson"
    bad_line.write_text('{"namespace": "a", "action": "b", "params": {}}\n{"namespace": \n')
    code, _, err = await cli("submit", str(bad_line), "--tenant", "acme", *api)
    assert code == 1 and "line 2, column" in err

    not_utf8 = tmp_path / "latin1.ndjson"
    not_utf8.write_bytes(b'{"namespace": "a", "action": "b", "params": {}}\n{"p": "\xe9"}\n')
    code, _, err = await cli("submit", str(not_utf8), "--tenant", "acme", *api)
    assert code == 1 and "line 2, column 8: not UTF-8" in err and "Traceback" not in err

    code, _, err = await cli("status", "no-such-batch", *api)
    assert code == 1 and "unknown batch" in err

    code, _, err = await cli(
        "status", "x", "--url", f"http://127.0.0.1:{free_port()}", "--key", "k"
    )
    assert code == 1 and "cannot reach batchwire" in err

    invalid = tmp_path / "empty.json"
    invalid.write_text('{"items": []}')
    code, _, err = await cli("submit", str(invalid), "--tenant", "acme", *api)
    assert code == 1 and "empty_batch" in err

    second_bad = tmp_path / "second_bad.json"  # the path names the item, not an NDJSON line
    second_bad.write_text('{"items": [\n  {"method": "GET", "path": "/a"},\n  {"method": ""}\n]}')
    code, _, err = await cli("submit", str(second_bad), "--tenant", "acme", *api)
    assert code == 1 and "'path': '$.items[1]" in err, err


async def test_a_missing_broker_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "BATCHWIRE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    for command in ("worker", "connector"):
        code, _, err = await cli(command, env=env)
        assert code == 1, err
        assert err.strip().splitlines()[-1].startswith("error: cannot reach Kafka at 127.0.0.1:")
        assert "Traceback" not in err
    batch = tmp_path / "batch.json"
    batch.write_text('{"items": [{"namespace": "batchwire", "action": "noop", "params": {}}]}')
    kafka = f"127.0.0.1:{free_port()}"
    code, _, err = await cli("submit", str(batch), "--tenant", "acme", "--kafka", kafka)
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err  # no aiokafka log, no unclosed producer
    assert err.startswith("Error: cannot reach Kafka")
