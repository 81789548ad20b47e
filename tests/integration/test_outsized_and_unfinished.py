"""Batches that must end, and a worker that must not stop, whatever their sizes and parts.

Found by a contract audit (2026-12-03, night): a final callback with its results inline,
a status with long item errors, or an item's result could each outgrow one Kafka message,
and the failed send stopped the worker on every restart (the same ledger event again); and
a batch whose part was rejected, or never sent, stayed `in_progress` past its deadline and
a cancel, holding one of its tenant's active batches for good.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.aggregation import ITEM_ERROR_CHARS
from streams.parts import MAX_MESSAGE_BYTES
from tests.fixtures.accounting import HANDLER_MODULES
from tests.fixtures.kafka_io import produce, read_until, results_of, submit_json, wait_final
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def echo(item_id: str, **params: Any) -> dict[str, Any]:
    return {"id": item_id, "namespace": "batchwire", "action": "echo", "params": params}


async def test_outsized_results_errors_and_callbacks_never_stop_the_worker(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker = worker_factory(HANDLER_MODULES)
    pad = "y" * 700_000
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {  # 8 results of ~1.4 MB each (request and output): too many bytes to go inline
            "batch_id": "big-cb",
            "tenant": "acme",
            "callback": {"url": "http://127.0.0.1:9/callback", "mode": "batch"},
            "items": [echo(f"e{i}", pad=pad) for i in range(8)],
        },
        {  # one result of ~12 MB: more than a Kafka message holds
            "batch_id": "big-out",
            "tenant": "acme",
            "items": [echo("huge", pad="w" * 6_000_000), echo("small", n=1)],
        },
        {  # 55 errors of 200,000 characters each in the status
            "batch_id": "big-err",
            "tenant": "acme",
            "stop_on_failure": False,
            "items": [
                {
                    "id": f"f{i}",
                    "namespace": "faults",
                    "action": "fail_long",
                    "params": {"chars": 200_000},
                }
                for i in range(55)
            ],
        },
    )
    finals = await wait_final(
        kafka_bootstrap, topic_prefix, ["big-cb", "big-out", "big-err"], timeout=180
    )
    assert finals["big-cb"]["status"] == "completed"
    callbacks = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.callbacks",
        lambda rs: any(r.key == b"big-cb" for r in rs),
    )
    payload = next(r.decoded() for r in callbacks if r.key == b"big-cb")["payload"]
    assert payload.get("results") is None
    assert payload["results_url"].endswith("/v1/batches/big-cb/results?tenant=acme")

    out = finals["big-out"]
    assert out["status"] == "completed_with_errors"
    assert out["counters"]["succeeded"] == 1 and out["counters"]["failed"] == 1
    results = {
        r["item_id"]: r for r in await results_of(kafka_bootstrap, topic_prefix, "big-out", 2)
    }
    huge = results["huge"]
    assert huge["status"] == "failed" and huge["output"] is None
    assert huge["errors"][0].startswith("the result took ")
    assert huge["request"]["params"]["pad"] == "w" * 6_000_000  # the item is kept whole
    assert results["small"]["output"] == {"n": 1}

    err = finals["big-err"]
    assert err["status"] == "completed_with_errors"
    assert err["counters"]["failed"] == err["counters"]["processed"] == 55
    assert len(err["item_errors"]) == 55  # cut short, so all of them fit
    assert all(len(message) <= ITEM_ERROR_CHARS for message in err["item_errors"].values())

    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "after", "tenant": "acme", "items": [echo("a", n=2)]},
    )
    assert (await wait_final(kafka_bootstrap, topic_prefix, ["after"]))["after"]["status"] == (
        "completed"
    )
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()


async def test_a_batch_missing_a_part_ends_at_its_deadline_or_when_cancelled(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker_factory()

    def first_of_two(batch_id: str, **fields: Any) -> dict[str, Any]:
        items = [echo(f"{batch_id}-{i}", i=i) for i in range(2)]
        return {"batch_id": batch_id, "tenant": "acme", "part": 0, "parts": 2, "items": items}

    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {**first_of_two("never-sent"), "deadline_s": 3},
        {**first_of_two("rejected"), "deadline_s": 3},
        {  # an empty action: `empty_parameter`, so the part never reaches the aggregator
            "batch_id": "rejected",
            "tenant": "acme",
            "part": 1,
            "parts": 2,
            "items": [{"id": "x", "namespace": "batchwire", "action": "", "params": {}}],
        },
        first_of_two("cancelled"),
    )
    await results_of(kafka_bootstrap, topic_prefix, "cancelled", 2)
    await produce(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.ledger",
        [
            (
                b"cancelled",
                json.dumps({"type": "cancel", "tenant": "acme", "batch_id": "cancelled"}).encode(),
            )
        ],
    )
    finals = await wait_final(
        kafka_bootstrap, topic_prefix, ["never-sent", "rejected", "cancelled"], timeout=60
    )
    for batch_id, status in [
        ("never-sent", "timed_out"),
        ("rejected", "timed_out"),
        ("cancelled", "cancelled"),
    ]:
        final = finals[batch_id]
        assert final["status"] == status, final
        counters = final["counters"]
        assert counters["posted"] == counters["processed"] == counters["succeeded"] == 2
        assert final["parts_received"] == 1 and final["parts"] == 2
    rejected = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.rejected",
        lambda rs: any(r.decoded()["batch_id"] == "rejected" for r in rs),
    )
    codes = {
        r.decoded()["error"]["code"] for r in rejected if r.decoded()["batch_id"] == "rejected"
    }
    assert codes == {"empty_parameter"}


async def test_a_part_that_disagrees_on_the_number_of_parts_is_rejected(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Neither an ended batch nor a running one takes a part that says another number of
    parts than its first part did (the audit reopened an ended batch this way)."""
    worker_factory()
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "closed", "tenant": "acme", "items": [echo("c0", i=0)]},
    )
    await wait_final(kafka_bootstrap, topic_prefix, ["closed"])

    def part(batch_id: str, number: int, parts: int) -> dict[str, Any]:
        items = [echo(f"{batch_id}{number}", i=number)]
        return {
            "batch_id": batch_id,
            "tenant": "acme",
            "part": number,
            "parts": parts,
            "items": items,
        }

    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        part("closed", 1, 2),
        part("grows", 0, 2),
        part("grows", 1, 3),
        part("grows", 1, 2),
    )
    rejected = await read_until(
        kafka_bootstrap, f"{topic_prefix}batchwire.rejected", lambda rs: len(rs) >= 2
    )
    assert sorted(
        (r.decoded()["batch_id"], r.decoded()["error"]["details"][0]["path"]) for r in rejected
    ) == [("closed", "$.parts"), ("grows", "$.parts")]
    finals = await wait_final(kafka_bootstrap, topic_prefix, ["closed", "grows"])
    assert finals["grows"]["status"] == "completed"
    assert finals["grows"]["counters"]["posted"] == 2
    assert finals["closed"]["counters"]["posted"] == 1


async def test_a_batch_refused_on_the_topic_is_rejected_until_its_id_comes_valid(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The contract's `rejected` status: a topic submission that fails validation is looked
    up as `rejected`, with its error, and its callback is called with that status; a valid
    submission under the same id then runs, and calls back under another `webhook-id`."""
    worker = worker_factory()
    bad = {"namespace": "batchwire", "action": "", "params": {}}
    callback = {"url": "http://127.0.0.1:9/done", "mode": "batch"}
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "refused", "tenant": "acme", "items": [bad], "callback": callback},
    )
    statuses = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.status",
        lambda rs: any(r.decoded()["status"] == "rejected" for r in rs),
    )
    assert [r.decoded()["batch_id"] for r in statuses] == ["refused"]
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        answer = await client.get(
            "/v1/batches/refused", headers={"Authorization": "Bearer key-acme"}
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "rejected"
        assert body["error"]["code"] == "empty_parameter"
        assert body["counters"]["posted"] == 0 and body["finished_at"]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {
            "batch_id": "refused",
            "tenant": "acme",
            "items": [echo("fixed", n=1)],
            "callback": callback,
        },
    )
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["refused"]))["refused"]
    assert final["status"] == "completed" and final["counters"]["succeeded"] == 1
    calls = [
        r.decoded()
        for r in await read_until(
            kafka_bootstrap, f"{topic_prefix}batchwire.callbacks", lambda rs: len(rs) >= 2
        )
    ]
    assert [c["payload"]["status"] for c in calls] == ["rejected", "completed"]
    assert calls[0]["payload"]["error"]["code"] == "empty_parameter"
    assert calls[0]["payload"]["counters"]["posted"] == 0 and calls[0]["url"] == callback["url"]
    assert calls[0]["callback_id"] != calls[1]["callback_id"]


async def test_an_item_too_big_to_travel_is_refused_wherever_it_comes_from(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A part that fits in one message, but whose item no longer does once the exploder has
    added the batch's fields to it: the HTTP edges refuse it (413), the exploder rejects one
    published on the topic (it used to fault the worker on every restart)."""
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": "acme=http://127.0.0.1:9"})
    near = MAX_MESSAGE_BYTES - 40_000  # under a message, over what the edges accept
    headers = {"Authorization": "Bearer key-acme"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        answer = await client.post(
            "/v1/batch",
            json=[{"id": "1", "method": "POST", "path": "/x", "body": "x" * near}],
            headers=headers,
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "too_many_items"
        answer = await client.post(
            "/v1/tenants/acme/batches",
            json={"batch_id": "near-http", "items": [echo("big", pad="x" * near)]},
            headers=headers,
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["details"][0]["path"] == "$.items[0]"
    topic_item = echo("big", pad="x" * (MAX_MESSAGE_BYTES - 4096))
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "near-topic", "tenant": "acme", "items": [topic_item]},
        {"batch_id": "after-near", "tenant": "acme", "items": [echo("a", n=1)]},
    )
    rejected = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.rejected",
        lambda rs: any(r.decoded()["batch_id"] == "near-topic" for r in rs),
    )
    error = next(r.decoded()["error"] for r in rejected if r.decoded()["batch_id"] == "near-topic")
    assert error["code"] == "too_many_items"
    assert error["details"][0]["path"] == "$.items[0]"
    assert (await wait_final(kafka_bootstrap, topic_prefix, ["after-near"]))["after-near"][
        "status"
    ] == "completed"
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        answer = await client.get("/v1/batches/near-topic", headers=headers)
        assert answer.status_code == 200 and answer.json()["status"] == "rejected", answer.text
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()


async def test_a_submission_whose_explosion_failed_is_exploded_after_a_restart(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A fault while exploding stops the worker without acknowledging the submission: the
    restarted worker explodes it (faust acked the event as the agent's loop was left, so
    the batch was lost, never looked up)."""
    flag = tmp_path / "explode-fault"
    flag.touch()
    worker = worker_factory(
        {
            "BATCHWIRE_HANDLER_MODULES": "tests.fixtures.explode_fault",
            "EXPLODE_FAULT_FILE": str(flag),
            "EXPLODE_FAULT_BATCH": "faulted",
        }
    )
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "faulted", "tenant": "acme", "items": [echo("f", n=1)]},
    )
    assert worker.proc is not None
    await asyncio.to_thread(worker.proc.wait, 60)  # the fault stops the worker
    assert not flag.exists()
    await asyncio.sleep(5)  # past faust's commit interval (2.8 s): an acked offset is committed
    worker.start()
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["faulted"]))["faulted"]
    assert final["status"] == "completed" and final["counters"]["succeeded"] == 1
