"""The pipeline on the real broker: explode, process, aggregate, emit callbacks."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2

from streams import codec, ledger_pieces
from streams.bundled_results import bundled, pack_results
from streams.clock import iso
from streams.kafka_admin import partitions_of
from streams.keys import item_topic_key
from streams.messages import encode_event, item_requested, part_fields
from streams.validation import validate_submission
from tests.fixtures.accounting import HANDLER_MODULES
from tests.fixtures.kafka_io import (
    Record,
    produce,
    read_for,
    read_until,
    results_of,
    submit_json,
    wait_final,
)
from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def action(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"a{i}", "namespace": "batchwire", "action": "echo", "params": {"i": i}, **extra}


def by_index(results: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["index"]: r for r in results}


async def test_http_items_keep_group_order_and_carry_idempotency_keys(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    ordered = [
        {
            "id": f"o{i}",
            "method": "POST",
            "path": f"/echo/ordered/{i}",
            "body": {"i": i},
            "group": "g1",
        }
        for i in range(50)
    ]
    others = [
        {"id": f"x{i}", "method": "GET", "path": f"/slow/20?x={i}", "group": f"other{i % 5}"}
        for i in range(25)
    ]
    mixed = [
        item for pair in zip(ordered, others + [None] * 25, strict=True) for item in pair if item
    ]
    batch = {
        "batch_id": "http-1",
        "tenant": "acme",
        "headers": {"Authorization": "Bearer tenant-token", "X-Trace": "t1"},
        "items": mixed,
    }
    await submit_json(kafka_bootstrap, topic_prefix, batch)
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["http-1"]))["http-1"]
    assert final["status"] == "completed"
    assert final["counters"]["posted"] == final["counters"]["succeeded"] == 75
    arrived = [p for p in target_api.paths() if p.startswith("/echo/ordered/")]
    assert arrived == [f"/echo/ordered/{i}" for i in range(50)]
    first = next(s for s in target_api.seen if s.path == "/echo/ordered/0")
    assert first.headers["idempotency-key"] == "http-1:o0"
    assert first.headers["authorization"] == "Bearer tenant-token"
    assert json.loads(first.body) == {"i": 0}
    results = by_index(await results_of(kafka_bootstrap, topic_prefix, "http-1", 75))
    assert results[0]["code"] == 200
    assert results[0]["output"] == {"method": "POST", "path": "/echo/ordered/0", "body": {"i": 0}}


async def test_stop_on_failure_skips_the_rest_of_the_group(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    items = [
        {"id": "s0", "method": "POST", "path": "/echo/s0", "group": "g"},
        {"id": "s1", "method": "POST", "path": "/status/422", "group": "g"},
        {"id": "s2", "method": "POST", "path": "/echo/s2", "group": "g"},
        {"id": "s3", "method": "POST", "path": "/echo/s3", "group": "g"},
        {"id": "free", "method": "POST", "path": "/echo/free", "group": "h"},
    ]
    keep_going = {"batch_id": "sof-2", "tenant": "acme", "stop_on_failure": False}
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "sof-1", "tenant": "acme", "items": items},
        {**keep_going, "items": [{**i, "path": i["path"].replace("s", "k")} for i in items]},
    )
    finals = await wait_final(kafka_bootstrap, topic_prefix, ["sof-1", "sof-2"])
    stopped = finals["sof-1"]
    assert stopped["status"] == "completed_with_errors"
    counters = stopped["counters"]
    assert (counters["succeeded"], counters["failed"], counters["skipped"]) == (2, 1, 2)
    assert stopped["item_errors"]["s1"].startswith("HTTP 422")
    results = by_index(await results_of(kafka_bootstrap, topic_prefix, "sof-1", 5))
    assert [results[i]["status"] for i in range(5)] == [
        "succeeded",
        "failed",
        "skipped",
        "skipped",
        "succeeded",
    ]
    assert results[1]["output"] == {"reason": "status 422"}
    assert "/echo/s2" not in target_api.paths()
    assert finals["sof-2"]["counters"]["skipped"] == 0


async def test_stages_run_in_order(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    items = [
        {
            "id": f"s{stage}-{i}",
            "method": "PUT",
            "path": f"/slow/{30 - 10 * stage}?s={stage}&i={i}",
            "stage": stage,
        }
        for stage in (2, 0, 1)
        for i in range(6)
    ]
    await submit_json(
        kafka_bootstrap, topic_prefix, {"batch_id": "st-1", "tenant": "acme", "items": items}
    )
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["st-1"]))["st-1"]
    assert final["status"] == "completed"
    stages = [int(s.path.split("s=")[1].split("&")[0]) for s in target_api.seen]
    assert stages == sorted(stages), stages
    assert len(stages) == 18


async def test_deadline_and_cancel(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    slow = [
        {"id": f"d{i}", "method": "GET", "path": f"/slow/400?i={i}", "group": "one"}
        for i in range(20)
    ]
    later = [{"id": "late", "method": "GET", "path": "/echo/late", "stage": 1}]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "dl-1", "tenant": "acme", "deadline_s": 2, "items": slow + later},
        {"batch_id": "cx-1", "tenant": "acme", "items": [{**i, "id": "c" + i["id"]} for i in slow]},
    )
    await read_until(kafka_bootstrap, f"{topic_prefix}batchwire.results", lambda r: len(r) >= 1)
    await produce(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.ledger",
        [(b"cx-1", json.dumps({"type": "cancel", "tenant": "acme", "batch_id": "cx-1"}).encode())],
    )
    finals = await wait_final(kafka_bootstrap, topic_prefix, ["dl-1", "cx-1"], timeout=60)
    timed_out = finals["dl-1"]
    assert timed_out["status"] == "timed_out"
    c = timed_out["counters"]
    assert c["processed"] == c["posted"] == 21
    assert c["timed_out"] >= 15 and c["succeeded"] + c["timed_out"] + c["failed"] == 21
    results = by_index(await results_of(kafka_bootstrap, topic_prefix, "dl-1", 21))
    assert results[20]["status"] == "timed_out"  # stage 1 never started
    assert "/echo/late" not in target_api.paths()
    cancelled = finals["cx-1"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["counters"]["cancelled"] >= 10
    assert cancelled["counters"]["processed"] == 20


async def test_an_item_still_running_after_the_deadline_is_swept_as_timed_out(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The aggregator reports an item that runs on past the batch's deadline as `timed_out`
    once the sweep's grace (10 s) has passed, so the batch ends without waiting for it; a
    part that arrives after the deadline does not call the sweep off. A cancel stops only
    the items not started: one that runs longer than that grace ends with its own result."""
    worker_factory(HANDLER_MODULES)
    stuck = {"id": "stuck", "namespace": "faults", "action": "work", "params": {"ms": 25_000}}
    in_parts = {"batch_id": "sw-2", "tenant": "acme", "deadline_s": 2, "parts": 2}
    long_work = {"namespace": "faults", "action": "work", "params": {"ms": 20_000, "i": 0}}
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "sw-1", "tenant": "acme", "deadline_s": 2, "items": [stuck, action(1)]},
        {**in_parts, "part": 0, "items": [stuck, action(1)]},
        {"batch_id": "cx-2", "tenant": "acme", "items": [{**long_work, "group": "g"}, action(1)]},
    )
    await asyncio.sleep(4)  # past the deadline, within the sweep's grace
    await submit_json(kafka_bootstrap, topic_prefix, {**in_parts, "part": 1, "items": [action(2)]})
    cancel = {"type": "cancel", "tenant": "acme", "batch_id": "cx-2"}
    await produce(
        kafka_bootstrap, f"{topic_prefix}batchwire.ledger", [(b"cx-2", json.dumps(cancel).encode())]
    )
    finals = await wait_final(kafka_bootstrap, topic_prefix, ["sw-1", "sw-2", "cx-2"], timeout=60)
    assert finals["cx-2"]["status"] == "cancelled"
    cancelled = by_index(await results_of(kafka_bootstrap, topic_prefix, "cx-2", 2))
    assert (cancelled[0]["status"], cancelled[0]["output"]) == ("succeeded", {"i": 0})
    for batch_id, posted in (("sw-1", 2), ("sw-2", 3)):
        assert finals[batch_id]["status"] == "timed_out"
        assert finals[batch_id]["counters"]["processed"] == posted
        results = by_index(await results_of(kafka_bootstrap, topic_prefix, batch_id, posted))
        # swept, not waited for (its own result, 25 s in, is not `timed_out`)
        assert (results[0]["status"], results[1]["status"]) == ("timed_out", "succeeded")
        if posted == 3:  # the late part's item never ran
            assert results[2]["status"] == "timed_out"


async def test_malformed_submissions_are_rejected_while_a_valid_batch_completes(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker_factory({"BATCHWIRE_MAX_ITEMS": "50"})
    kinds: list[tuple[str, bytes | None]] = [
        ("invalid_json", b'{"tenant": "acme", "items": ['),
        ("invalid_json", b"\xff\xfe not utf-8"),
        ("invalid_batch_format", b"[1, 2, 3]"),
        ("invalid_batch_format", json.dumps({"tenant": "acme", "items": [{"id": "x"}]}).encode()),
        ("invalid_batch_format", json.dumps({"tenant": "acme", "items": "nope"}).encode()),
        (
            "empty_parameter",
            json.dumps({"tenant": "acme", "items": [action(0, params=None)]}).encode(),
        ),
        (
            "empty_parameter",
            json.dumps({"tenant": "acme", "items": [{"method": "", "path": "/x"}]}).encode(),
        ),
        (
            "duplicate_item_id",
            json.dumps({"tenant": "acme", "items": [action(1), action(1)]}).encode(),
        ),
        ("empty_batch", json.dumps({"tenant": "acme", "items": []}).encode()),
        (
            "too_many_items",
            json.dumps({"tenant": "acme", "items": [action(i) for i in range(51)]}).encode(),
        ),
        ("tenant_not_allowed", json.dumps({"tenant": "initech", "items": [action(0)]}).encode()),
        ("invalid_batch_format", codec.MAGIC + b"\x00" * 8 + b"garbage"),
        # each of these stopped the worker once, and again on every restart:
        ("invalid_json", None),  # a tombstone
        (
            "invalid_batch_format",  # a stage no Avro int holds
            json.dumps({"tenant": "acme", "items": [action(2, stage=2**31)]}).encode(),
        ),
        (  # an integer Python refuses to convert (past 4,300 digits)
            "invalid_json",
            b'{"tenant": "acme", "items": [{"id": ' + b"1" * 5000 + b', "method": "GET"}]}',
        ),
        ("invalid_json", b'{"tenant": "acme", "items": [{"id": "n", "params": NaN}]}'),
    ]
    bad = [kinds[i % len(kinds)] for i in range(200)]
    valid = {"batch_id": "ok-1", "tenant": "acme", "items": [action(i) for i in range(30)]}
    messages = [(b"acme", raw) for _, raw in bad[:100]]
    messages.append((b"acme", json.dumps(valid).encode()))
    messages.extend((b"acme", raw) for _, raw in bad[100:])
    await produce(kafka_bootstrap, f"{topic_prefix}batchwire.batches", messages)
    rejected = await read_until(
        kafka_bootstrap, f"{topic_prefix}batchwire.rejected", lambda r: len(r) >= 200, timeout=90
    )
    codes = sorted(r.decoded()["error"]["code"] for r in rejected)
    assert codes == sorted(code for code, _ in bad)
    # keyed by the body's tenant, or by the message's key when the body names none
    assert {r.key for r in rejected if r.decoded()["tenant"] is None} == {b"acme"}
    assert {r.key for r in rejected} == {b"acme", b"initech"}
    sample = next(
        r.decoded() for r in rejected if r.decoded()["error"]["code"] == "empty_parameter"
    )
    assert sample["error"]["details"][0]["path"].startswith("$.items[0].")
    assert sample["tenant"] == "acme"
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["ok-1"]))["ok-1"]
    assert final["counters"]["succeeded"] == 30


async def test_redelivered_results_are_counted_once(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker_factory()
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "dup-1", "tenant": "acme", "items": [action(i) for i in range(10)]},
    )
    first = (await wait_final(kafka_bootstrap, topic_prefix, ["dup-1"]))["dup-1"]
    assert first["counters"]["succeeded"] == 10
    results = await results_of(kafka_bootstrap, topic_prefix, "dup-1", 10)
    bundle = [bundled(r, codec.encode("ItemResult", r)) for r in results]
    # the aggregator reads results in bundles on the ledger: each result again in 100 more
    # bundles, and 10 times within each of them (an item that ran twice can be in one twice)
    await produce(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.ledger",
        [(b"dup-1", pack_results("acme", "dup-1", bundle * 10)) for _ in range(100)],
    )
    statuses = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.status", 5.0)
    for record in statuses:
        status = record.decoded()
        if status["batch_id"] == "dup-1" and status["status"] == "completed":
            assert status["counters"]["processed"] == 10
            assert status["counters"]["succeeded"] == 10


async def test_results_ahead_of_their_batch_still_get_item_callbacks(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A result bundle can come on the ledger before the part that registers its batch: an
    item result counted before its batch's callback is known still gets its callback. So
    too when the id was a rejected batch's: the result counts in the new batch."""
    worker_factory()
    items = [action(i) for i in range(3)]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "src-1", "tenant": "acme", "items": items},
        {"batch_id": "early-1", "tenant": "acme", "items": []},  # rejected: empty_batch
    )
    await read_until(kafka_bootstrap, f"{topic_prefix}batchwire.rejected", lambda rs: len(rs) >= 1)
    rejected = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.status",
        lambda rs: any(r.decoded()["status"] == "rejected" for r in rs),
    )
    assert {r.decoded()["batch_id"] for r in rejected} >= {"early-1"}
    source = await results_of(kafka_bootstrap, topic_prefix, "src-1", 3)
    early = {**by_index(source)[0], "batch_id": "early-1"}
    await produce(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.ledger",
        [
            (
                b"early-1",
                pack_results(
                    "acme", "early-1", [bundled(early, codec.encode("ItemResult", early))]
                ),
            )
        ],
    )
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {
            "batch_id": "early-1",
            "tenant": "acme",
            "callback": {"url": "https://hooks.example.test/early", "mode": "item"},
            "items": items,
        },
    )
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["early-1"]))["early-1"]
    assert final["counters"]["processed"] == 3
    calls = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.callbacks",
        lambda rs: len({r.decoded()["payload"]["item_id"] for r in rs}) >= 3,
    )
    assert sorted(c.decoded()["payload"]["item_id"] for c in calls) == ["a0", "a1", "a2"]


async def test_ten_thousand_http_items_complete_with_exact_counters(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    n = 10_001  # one more than a results page reads (`streams.api.batches.MAX_SCANNED`)
    items = [
        {
            "id": f"h{i}",
            "method": "PUT",
            "path": f"/echo/{i}",
            "body": {"i": i},
            "group": f"g{i % 50}",
        }
        for i in range(n)
    ]
    await submit_json(
        kafka_bootstrap, topic_prefix, {"batch_id": "tenk", "tenant": "acme", "items": items}
    )
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["tenk"], timeout=300))["tenk"]
    counters = final["counters"]
    assert final["status"] == "completed"
    assert counters["posted"] == counters["processed"] == counters["succeeded"] == n
    results = await results_of(kafka_bootstrap, topic_prefix, "tenk", n, timeout=120)
    by_item = {r["item_id"]: r for r in results}
    assert len(by_item) == n
    assert all(by_item[f"h{i}"]["output"]["body"] == {"i": i} for i in range(0, n, 997))
    assert len({s.path for s in target_api.seen}) == n
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        pages = []
        cursor: str | None = "0"
        while cursor is not None and len(pages) < 3:
            page = await client.get(
                "/v1/batches/tenk/results",
                params={"status": "failed", "cursor": cursor},
                headers={"Authorization": "Bearer key-acme"},
            )
            pages.append(page.json())
            cursor = page.json()["next_cursor"]
    # no failed item: the first page stops after 10,000 results read, the second ends
    assert pages == [{"results": [], "next_cursor": "10000"}, {"results": [], "next_cursor": None}]
    # results go out a record batch per bundle (`streams.publish.publish_batch`), on the
    # partition Kafka's default partitioner gives their key, as a message sent alone would be
    topic = f"{topic_prefix}batchwire.results"
    on_topic = [r for r in await read_for(kafka_bootstrap, topic, 2.0) if r.key == b"tenk"]
    assert len(on_topic) >= n
    partitions = len(await partitions_of(kafka_bootstrap, topic))
    assert {r.partition for r in on_topic} == {(murmur2(b"tenk") & 0x7FFFFFFF) % partitions}


async def test_finished_batches_and_then_their_ids_are_forgotten_after_their_retention(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """An ended batch's status, results and controls go after its retention; the exploder
    keeps its id a retention longer than that from its deadline (`explode._forget_at`):
    meanwhile other content under the id is a conflict, after that it is a new batch, whose
    callback has a webhook-id of its own; the ids of a batch that never got its last part
    are forgotten with it."""
    retention_s = 0.00005 * 86400  # 4.32 s
    worker = worker_factory(HANDLER_MODULES, args=("--retention-days", "0.00005"))
    failing = {"id": "f", "namespace": "faults", "action": "fail", "params": {}, "group": "g"}
    deadline_s = 10
    hook = {"url": "http://127.0.0.1:9/hook", "mode": "batch"}  # no connector runs here
    old = {"batch_id": "old-1", "tenant": "acme", "deadline_s": deadline_s, "callback": hook}
    submitted = time.time()
    # a batch whose last part never comes: the exploder keeps its part's ids until it
    # forgets the id
    half = {"batch_id": "half-1", "tenant": "acme", "deadline_s": deadline_s, "parts": 2}
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {**old, "items": [failing, action(1, group="g"), action(2)]},
        {**half, "part": 0, "items": [action(0)]},
    )
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["old-1"]))["old-1"]
    assert final["counters"]["skipped"] == 1  # group g failed: the batch has controls

    async def until_tombstone(topic: str, key: bytes) -> list[Record]:
        """The records of `key` on `topic` up to its tombstone."""
        records = await read_until(
            kafka_bootstrap,
            f"{topic_prefix}{topic}",
            lambda rs: any(r.key == key and not r.value for r in rs),
            timeout=60,
            tombstones=True,
        )
        mine = [r for r in records if r.key == key]
        assert mine[-1].value == b""  # nothing after it
        return mine

    statuses = await until_tombstone("batchwire.status", b"old-1")
    assert statuses[-2].decoded()["status"] == "completed_with_errors"
    controls = await until_tombstone("batchwire.controls", b"acme/old-1#groups/0")
    assert json.loads(controls[0].value)["failed_groups"] == ["g"]

    # the status is gone, the id is not yet: other content under it is still a conflict
    assert time.time() < submitted + deadline_s + 2 * retention_s, "too slow to check"
    other = {**old, "items": [action(i) for i in range(4)]}
    auth = {"Authorization": "Bearer key-acme"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        answer = await client.post("/v1/tenants/acme/batches", json=other, headers=auth)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "batch_conflict"
        # once the id is forgotten (its record still stored: no submission came to the
        # exploder's partition since), the same submission is a new batch
        forgotten = submitted + deadline_s + 2 * retention_s + 0.5
        await asyncio.sleep(max(0.0, forgotten - time.time()))
        answer = await client.post("/v1/tenants/acme/batches?wait=30", json=other, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "completed"
        assert answer.json()["counters"]["posted"] == 4
    callbacks = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.callbacks", 2.0)
    webhook_ids = [r.decoded()["callback_id"] for r in callbacks if r.key == b"old-1"]
    assert len(webhook_ids) == 2 and len(set(webhook_ids)) == 2, webhook_ids
    ids = await until_tombstone("batchwire-part-ids-changelog", b"acme/half-1/000000/0000")
    assert len(ids) == 2


async def test_a_small_release_window_feeds_a_batch_in_slices_each_item_once(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """`--release-window 40`: a batch of two parts and two stages, grouped and not, is fed
    to the processors 40 items at a time; every item reaches `batchwire.items` once. Its
    items are big enough that each part reaches the aggregator in several pieces."""
    worker_factory(args=("--release-window", "40"))
    n = 600
    pad = "p" * (3 * ledger_pieces.PIECE_BYTES // 300)  # three pieces' worth per part
    items = [
        action(
            i,
            params={"i": i, "pad": pad},
            stage=int(i >= 500),
            **({"group": f"g{i % 3}"} if i % 4 == 0 else {}),
        )
        for i in range(n)
    ]
    parts = [
        {"batch_id": "win-1", "tenant": "acme", "part": p, "parts": 2, "items": chunk}
        for p, chunk in enumerate((items[:300], items[300:]))
    ]
    await submit_json(kafka_bootstrap, topic_prefix, *parts)
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["win-1"], timeout=180))["win-1"]
    counters = final["counters"]
    assert final["status"] == "completed"
    assert counters["posted"] == counters["processed"] == counters["succeeded"] == n
    requested = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.items", 2.0)
    ids = [codec.decode_as("ItemRequested", r.value)["item_id"] for r in requested]
    assert sorted(ids) == sorted(f"a{i}" for i in range(n))  # each item sent exactly once
    results = by_index(await results_of(kafka_bootstrap, topic_prefix, "win-1", n))
    assert [results[i]["output"]["i"] for i in range(n)] == list(range(n))
    ledger = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.ledger", 2.0)
    pieces = Counter(
        ledger_pieces.decode(r.value).fields["part"]
        for r in ledger
        if r.key == b"win-1" and ledger_pieces.is_piece(r.value)
    )
    assert pieces[0] >= 3 and pieces[1] >= 3


def most_in_flight(items: list[Record], results: list[Record], after: int) -> int:
    """The most items of a batch on `batchwire.items` without a result on
    `batchwire.results`, by the records' create times, once `after` results are in (a
    result counts before an item sent in the same millisecond: items are released because
    results came back)."""
    moves = sorted([(r.timestamp, 0, -1) for r in results] + [(r.timestamp, 1, 1) for r in items])
    in_flight, most, done = 0, 0, 0
    for _, _, step in moves:
        in_flight += step
        done += step < 0
        if done >= after:
            most = max(most, in_flight)
    return most


async def test_a_big_batch_shares_the_window_while_a_small_batch_runs(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """`--release-window 200 --shared-window 20`: while a small batch (100 items) has
    results coming in, a big batch has at most 20 items in flight once its head of 200
    (sent by the exploder) has results; alone it would be refilled to 200. Both end exact."""
    worker_factory(HANDLER_MODULES, args=("--release-window", "200", "--shared-window", "20"))
    slow = [  # one group: a result every 100 ms for 10 s
        {
            "id": f"s{i}",
            "namespace": "faults",
            "action": "work",
            "params": {"i": i, "ms": 100},
            "group": "one",
        }
        for i in range(100)
    ]
    await submit_json(
        kafka_bootstrap, topic_prefix, {"batch_id": "other", "tenant": "globex", "items": slow}
    )
    await read_until(  # the other batch runs
        kafka_bootstrap,
        f"{topic_prefix}batchwire.status",
        lambda rs: any(r.key == b"other" and r.decoded()["counters"]["processed"] for r in rs),
        timeout=60,
    )
    n = 1000
    big = [
        {"id": f"b{i}", "namespace": "faults", "action": "work", "params": {"i": i, "ms": 10}}
        for i in range(n)
    ]
    await submit_json(
        kafka_bootstrap, topic_prefix, {"batch_id": "big", "tenant": "acme", "items": big}
    )
    finals = await wait_final(kafka_bootstrap, topic_prefix, ["big", "other"], timeout=180)
    assert finals["big"]["status"] == finals["other"]["status"] == "completed"
    assert finals["big"]["counters"]["succeeded"] == n
    assert finals["other"]["counters"]["succeeded"] == len(slow)
    assert finals["big"]["finished_at"] < finals["other"]["finished_at"], (
        "the small batch ended first: the window was not shared all along"
    )
    requested = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.items", 2.0)
    results = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.results", 2.0)
    mine = [r for r in requested if codec.decode_as("ItemRequested", r.value)["batch_id"] == "big"]
    assert len(mine) == n  # each item sent once
    assert most_in_flight(mine, [r for r in results if r.key == b"big"], after=200) <= 20


@pytest.mark.parametrize("first_format", ["binary", "json"])
async def test_a_part_exploded_again_with_a_smaller_head_ends_exact(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, first_format: str
) -> None:
    """An exploder wrote a part's ledger event with a head of 100 items and died after
    sending 50 of them; the part was then exploded again by a worker with a head of 50 (a
    smaller `--release-window`). The aggregator sends the 50 items left out, and the batch
    ends exact, each item counted once. With `json`, the first exploder was of a version
    that wrote pieces as JSON (`ledger_pieces.from_event`): the aggregator releases the
    part's items from that piece."""
    worker_factory()
    sub = validate_submission(
        {"batch_id": "again", "tenant": "acme", "items": [action(i) for i in range(120)]},
        allowed_tenants=frozenset({"acme"}),
        max_items=1000,
    )
    deadline_at = time.time() + 600

    def ledger_events(head: int, form: str = "binary") -> list[tuple[bytes | None, bytes]]:
        fields = part_fields(sub, deadline_at, iso(), prerelease_below=head)
        if form == "json":
            texts = [json.dumps({k: v for k, v in i.items() if v is not None}) for i in sub.items]
            return [(b"again", encode_event({**fields, "items": texts}))]
        pieces = ledger_pieces.make(fields, sub.items)
        return [(b"again", ledger_pieces.encode(piece)) for piece in pieces]

    def first_items(n: int) -> list[tuple[bytes | None, bytes]]:
        fields = part_fields(sub, deadline_at, iso(), prerelease_below=n)
        return [
            (
                item_topic_key("acme", "again", item["id"], item["group"]).encode(),
                codec.encode("ItemRequested", item_requested(fields, item)),
            )
            for item in sub.items[:n]
        ]

    ledger, items_topic = f"{topic_prefix}batchwire.ledger", f"{topic_prefix}batchwire.items"
    await produce(kafka_bootstrap, ledger, ledger_events(100, first_format))  # the first...
    await produce(kafka_bootstrap, items_topic, first_items(50))  # ...died here
    await produce(kafka_bootstrap, ledger, ledger_events(50))  # the second one
    await produce(kafka_bootstrap, items_topic, first_items(50))
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["again"], timeout=90))["again"]
    counters = final["counters"]
    assert final["status"] == "completed"
    assert counters["posted"] == counters["processed"] == counters["succeeded"] == 120
    results = by_index(await results_of(kafka_bootstrap, topic_prefix, "again", 120))
    assert sorted(results) == list(range(120))
