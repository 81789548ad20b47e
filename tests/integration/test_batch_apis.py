"""One scenario per batch API the contract replaces, each checking what that API promised its
users, submitted on `batchwire.batches` and observed on the output topics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from streams.held_parts import MAX_HELD_PER_TENANT, MAX_PARTS_AHEAD
from tests.fixtures.kafka_io import (
    Record,
    produce,
    read_until,
    results_of,
    submit_json,
    wait_final,
)
from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOOK = "https://hooks.example.test/cb"


async def _callbacks(bootstrap: str, prefix: str, count: int) -> list[dict[str, Any]]:
    records = await read_until(bootstrap, f"{prefix}batchwire.callbacks", lambda r: len(r) >= count)
    return [r.decoded() for r in records]


async def _rejections(bootstrap: str, prefix: str, count: int) -> list[dict[str, Any]]:
    records = await read_until(bootstrap, f"{prefix}batchwire.rejected", lambda r: len(r) >= count)
    return [r.decoded() for r in records]


async def test_endpoint_batch_invocation_with_item_callbacks(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    """API 1: per-item callbacks `{success, errors, originalInput, endpointOutput}` with the
    batch id, an allow-list of tenants, accepted asynchronously."""
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    items = [
        {"id": "e1", "method": "POST", "path": "/echo/e1", "body": {"amount": 5}},
        {"id": "e2", "method": "POST", "path": "/status/500", "body": {"amount": 7}},
    ]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {
            "batch_id": "tx-77",
            "tenant": "acme",
            "callback": {"url": HOOK, "mode": "item"},
            "items": items,
        },
        {"batch_id": "tx-78", "tenant": "initech", "items": items},
    )
    [rejected] = await _rejections(kafka_bootstrap, topic_prefix, 1)
    assert rejected["error"]["code"] == "tenant_not_allowed"
    assert (rejected["tenant"], rejected["batch_id"]) == ("initech", "tx-78")
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["tx-77"]))["tx-77"]
    assert final["status"] == "completed_with_errors"
    calls = {c["payload"]["item_id"]: c for c in await _callbacks(kafka_bootstrap, topic_prefix, 2)}
    ok, bad = calls["e1"], calls["e2"]
    assert ok["url"] == HOOK and ok["mode"] == "item" and ok["batch_id"] == "tx-77"
    assert ok["payload"] == {
        "batch_id": "tx-77",
        "item_id": "e1",
        "success": True,
        "errors": [],
        "originalInput": {**items[0], "stage": 0},
        "endpointOutput": {"method": "POST", "path": "/echo/e1", "body": {"amount": 5}},
    }
    assert bad["payload"]["success"] is False
    assert bad["payload"]["errors"] == ["HTTP 500 Internal Server Error"]
    assert bad["payload"]["endpointOutput"] == {"reason": "status 500"}
    assert ok["callback_id"] != bad["callback_id"]


async def test_namespace_action_jobs_with_completion_callback(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """API 2: `{namespace, action, params}` jobs, a callback carrying `{asyncId, results[]}`
    with `{namespace, action, request, response}` per job, a max of N jobs, codes for a bad
    job format and an empty parameter."""
    worker_factory({"BATCHWIRE_MAX_ITEMS": "3"})
    jobs = [
        {"id": "j1", "namespace": "batchwire", "action": "echo", "params": {"sku": "A-1"}},
        {"id": "j2", "namespace": "batchwire", "action": "noop", "params": {"x": 1}},
    ]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {
            "batch_id": "async-1",
            "tenant": "acme",
            "callback": {"url": HOOK},
            "metadata": {"asyncId": "async-1"},
            "items": jobs,
        },
        {"batch_id": "async-2", "tenant": "acme", "items": jobs * 2},
        {"batch_id": "async-3", "tenant": "acme", "items": [{"id": "j", "namespace": "x"}]},
        {
            "batch_id": "async-4",
            "tenant": "acme",
            "items": [{"id": "j", "namespace": "x", "action": "y", "params": ""}],
        },
    )
    codes = {
        r["batch_id"]: r["error"]["code"]
        for r in await _rejections(kafka_bootstrap, topic_prefix, 3)
    }
    assert codes == {
        "async-2": "too_many_items",
        "async-3": "invalid_batch_format",
        "async-4": "empty_parameter",
    }
    [done] = await _callbacks(kafka_bootstrap, topic_prefix, 1)
    assert done["mode"] == "batch" and done["url"] == HOOK
    payload = done["payload"]
    assert payload["batch_id"] == "async-1"
    assert payload["metadata"] == {"asyncId": "async-1"}
    assert payload["status"] == "completed"
    per_job = [
        (r["request"]["namespace"], r["request"]["action"], r["request"]["params"], r["output"])
        for r in payload["results"]
    ]
    assert per_job == [
        ("batchwire", "echo", {"sku": "A-1"}, {"sku": "A-1"}),
        ("batchwire", "noop", {"x": 1}, {"ok": True}),
    ]


async def test_sequential_rest_batch_answers_in_order(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    """API 3: `[{Url, Method, Payload}]` run one after another, answered in order with
    `[{ReturnCode, ResponseContent}]`; an error's content carries `reason`."""
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    calls = [
        {"Url": "/echo/accounts", "Method": "POST", "Payload": {"name": "a"}},
        {"Url": "/status/404", "Method": "GET", "Payload": None},
        {"Url": "/echo/accounts/1", "Method": "PATCH", "Payload": {"name": "b"}},
    ]
    items = [
        {
            "id": str(i),
            "method": c["Method"],
            "path": c["Url"],
            "body": c["Payload"],
            "group": "seq",
        }
        for i, c in enumerate(calls)
    ]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "rest-1", "tenant": "acme", "stop_on_failure": False, "items": items},
    )
    await wait_final(kafka_bootstrap, topic_prefix, ["rest-1"])
    results = sorted(
        await results_of(kafka_bootstrap, topic_prefix, "rest-1", 3), key=lambda r: r["index"]
    )
    answers = [{"ReturnCode": r["code"], "ResponseContent": r["output"]} for r in results]
    created = {"method": "POST", "path": "/echo/accounts", "body": {"name": "a"}}
    patched = {"method": "PATCH", "path": "/echo/accounts/1", "body": {"name": "b"}}
    assert answers == [
        {"ReturnCode": 200, "ResponseContent": created},
        {"ReturnCode": 404, "ResponseContent": {"reason": "status 404"}},
        {"ReturnCode": 200, "ResponseContent": patched},
    ]
    assert target_api.paths() == ["/echo/accounts", "/status/404", "/echo/accounts/1"]


async def test_polled_batch_jobs_with_stages_and_rejections(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """API 4: statuses in progress / completed / completed with errors, `noOfItemsPosted`,
    `noOfItemsProcessed`, `jobItemErrors {entityId: message}`, duplicate entities, empty and
    oversize batches rejected, entity kinds in stages."""
    worker_factory({"BATCHWIRE_MAX_ITEMS": "10"})
    entities = [
        {
            "id": "cust-1",
            "namespace": "batchwire",
            "action": "echo",
            "params": {"k": 1},
            "stage": 0,
        },
        {"id": "ord-1", "namespace": "crm", "action": "missing", "params": {"k": 2}, "stage": 1},
        {"id": "ord-2", "namespace": "batchwire", "action": "echo", "params": {"k": 3}, "stage": 1},
    ]
    dup = [entities[0], {**entities[2], "id": "cust-1"}]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {"batch_id": "corr-1", "tenant": "acme", "items": entities},
        {"batch_id": "corr-2", "tenant": "acme", "items": dup},
        {"batch_id": "corr-3", "tenant": "acme", "items": []},
        {"batch_id": "corr-4", "tenant": "acme", "items": [entities[0]] * 11},
    )
    codes = {
        r["batch_id"]: r["error"]["code"]
        for r in await _rejections(kafka_bootstrap, topic_prefix, 3)
    }
    assert codes == {
        "corr-2": "duplicate_item_id",
        "corr-3": "empty_batch",
        "corr-4": "too_many_items",
    }
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["corr-1"]))["corr-1"]
    assert final["status"] == "completed_with_errors"
    assert (final["counters"]["posted"], final["counters"]["processed"]) == (3, 3)
    assert final["item_errors"] == {"ord-1": "unknown action crm/missing"}
    statuses = await read_until(
        kafka_bootstrap, f"{topic_prefix}batchwire.status", lambda r: len(r) >= 1
    )
    seen = [s.decoded()["status"] for s in statuses if s.decoded()["batch_id"] == "corr-1"]
    assert seen[0] == "in_progress" and seen[-1] == "completed_with_errors"
    results = await results_of(kafka_bootstrap, topic_prefix, "corr-1", 3)
    finished = {r["item_id"]: r["finished_at"] for r in results}
    started = {r["item_id"]: r["started_at"] for r in results}
    assert finished["cust-1"] <= min(started["ord-1"], started["ord-2"])


async def test_v1_batch_transactions_and_inherited_headers(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    """API 5: `[{id, method, path, headers, body, transaction}]` answered `[{id, code,
    headers, body}]`; batch headers and token inherited; one transaction runs together, in
    order."""
    worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    requests = [
        {"id": "r1", "method": "POST", "path": "/slow/50?t=a1", "transaction": "a"},
        {
            "id": "r2",
            "method": "POST",
            "path": "/echo/b1",
            "transaction": "b",
            "headers": {"Authorization": "Bearer item-token"},
        },
        {"id": "r3", "method": "POST", "path": "/echo/a2?t=a2", "transaction": "a"},
    ]
    items = [{k if k != "transaction" else "group": v for k, v in r.items()} for r in requests]
    await submit_json(
        kafka_bootstrap,
        topic_prefix,
        {
            "batch_id": "v1-1",
            "tenant": "acme",
            "headers": {"Authorization": "Bearer batch-token", "X-Request-Id": "req-9"},
            "items": items,
        },
    )
    await wait_final(kafka_bootstrap, topic_prefix, ["v1-1"])
    results = sorted(
        await results_of(kafka_bootstrap, topic_prefix, "v1-1", 3), key=lambda r: r["index"]
    )
    answer = [{"id": r["item_id"], "code": r["code"], "body": r["output"]} for r in results]
    assert [a["id"] for a in answer] == ["r1", "r2", "r3"]
    assert all(a["code"] == 200 for a in answer)
    assert all("content-type" in r["headers"] for r in results)
    seen = {s.path: s for s in target_api.seen}
    assert seen["/slow/50?t=a1"].headers["authorization"] == "Bearer batch-token"
    assert seen["/echo/b1"].headers["authorization"] == "Bearer item-token"
    assert seen["/echo/a2?t=a2"].headers["x-request-id"] == "req-9"
    order = target_api.paths()
    assert order.index("/slow/50?t=a1") < order.index("/echo/a2?t=a2")
    assert seen["/slow/50?t=a1"].at < seen["/echo/a2?t=a2"].at


async def test_a_batch_in_parts_ends_only_when_every_part_arrived(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Parts may arrive out of order; items of early parts start at once; indexes follow
    submission order; the batch ends only after its last part. The batch's fields are its
    first part's: another part's are ignored."""
    worker_factory()

    def part(n: int, size: int) -> dict[str, Any]:
        return {
            "batch_id": "big-1",
            "tenant": "acme",
            "part": n,
            "parts": 3,
            "headers": {"X-Part": str(n)},
            "stop_on_failure": n == 0,
            "items": [
                {"namespace": "batchwire", "action": "echo", "params": {"part": n, "i": i}}
                for i in range(size)
            ],
        }

    await submit_json(kafka_bootstrap, topic_prefix, part(0, 4), part(2, 3))
    statuses = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.status",
        lambda rs: any(r.decoded()["counters"]["processed"] == 4 for r in rs),
    )
    assert all(s.decoded()["status"] == "in_progress" for s in statuses)
    await submit_json(kafka_bootstrap, topic_prefix, part(1, 5))
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["big-1"]))["big-1"]
    assert final["status"] == "completed"
    assert final["counters"]["posted"] == final["counters"]["succeeded"] == 12
    results = await results_of(kafka_bootstrap, topic_prefix, "big-1", 12)
    order = sorted((r["index"], r["item_id"], r["output"]["part"]) for r in results)
    assert [i for i, _, _ in order] == list(range(12))
    assert [p for _, _, p in order] == [0] * 4 + [1] * 5 + [2] * 3
    assert [item_id for _, item_id, _ in order] == [str(i) for i in range(12)]
    items = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.items",
        lambda rs: sum(r.decoded()["batch_id"] == "big-1" for r in rs) >= 12,
    )
    fields = {
        (json.dumps(r.decoded()["headers"]), r.decoded()["stop_on_failure"])
        for r in items
        if r.decoded()["batch_id"] == "big-1"
    }
    assert fields == {('{"X-Part": "0"}', True)}


async def test_parts_wait_for_their_predecessors_only_within_bounds(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A part too far ahead of the next expected one, or beyond the tenant's count of held
    parts, is rejected with a contract code; a held part still joins its batch once the
    predecessor arrives, and that frees its room."""
    worker_factory()

    def part(batch_id: str, n: int, parts: int, tenant: str = "globex") -> dict[str, Any]:
        return {
            "batch_id": batch_id,
            "tenant": tenant,
            "part": n,
            "parts": parts,
            "items": [
                {"id": f"p{n}", "namespace": "batchwire", "action": "echo", "params": {"n": n}}
            ],
        }

    far = MAX_PARTS_AHEAD + 1
    held = [part(f"h{n}", 1, 2) for n in range(MAX_HELD_PER_TENANT + 1)]
    await submit_json(kafka_bootstrap, topic_prefix, part("far", far, far + 1, "acme"), *held)
    rejected_topic = f"{topic_prefix}batchwire.rejected"
    rejected = await read_until(kafka_bootstrap, rejected_topic, lambda rs: len(rs) >= 2)
    codes = {r.datum["batch_id"]: r.datum["error"]["code"] for r in rejected}
    assert codes == {
        "far": "invalid_batch_format",
        f"h{MAX_HELD_PER_TENANT}": "too_many_active_batches",
    }

    await submit_json(
        kafka_bootstrap, topic_prefix, part("h0", 0, 2), part("late", 1, 2), part("late", 0, 2)
    )
    finals = await wait_final(kafka_bootstrap, topic_prefix, ["h0", "late"])
    for batch_id in ("h0", "late"):
        assert finals[batch_id]["status"] == "completed", finals[batch_id]
        assert finals[batch_id]["counters"]["succeeded"] == 2
    results = await results_of(kafka_bootstrap, topic_prefix, "late", 2)
    assert sorted((r["index"], r["item_id"]) for r in results) == [(0, "p0"), (1, "p1")]
    rejected = await read_until(kafka_bootstrap, rejected_topic, lambda rs: len(rs) >= 2)
    assert len(rejected) == 2  # "late" part 1 took the room h0 left


async def test_an_id_of_an_earlier_part_is_a_duplicate_and_the_ids_are_then_forgotten(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Ids are unique within a batch across its parts: a part sent straight to Kafka that
    repeats an id of an earlier part (a default id too) is `duplicate_item_id` while a part
    held behind it waits; the corrected part is taken, and once the last part is, the
    exploder's stored ids are deleted from its changelog."""
    worker_factory()

    def part(n: int, ids: list[str | None]) -> dict[str, Any]:
        items = [
            {"namespace": "batchwire", "action": "echo", "params": {"n": n}}
            | ({} if item_id is None else {"id": item_id})
            for item_id in ids
        ]
        return {"batch_id": "dup-1", "tenant": "acme", "part": n, "parts": 3, "items": items}

    # part 0's ids are "a" and "1" (its second item's default); part 2 overtakes part 1
    await submit_json(kafka_bootstrap, topic_prefix, part(0, ["a", None]), part(2, ["c"]))
    await submit_json(kafka_bootstrap, topic_prefix, part(1, ["b", "1", "a"]))
    (rejection,) = await _rejections(kafka_bootstrap, topic_prefix, 1)
    assert rejection["batch_id"] == "dup-1"
    assert rejection["error"]["code"] == "duplicate_item_id"
    assert rejection["error"]["details"] == [
        {"path": "$.items[1].id", "message": "also used in part 0"},
        {"path": "$.items[2].id", "message": "also used in part 0"},
    ]
    await submit_json(kafka_bootstrap, topic_prefix, part(1, ["b", "d"]))
    final = (await wait_final(kafka_bootstrap, topic_prefix, ["dup-1"]))["dup-1"]
    assert final["status"] == "completed"
    assert final["counters"]["posted"] == final["counters"]["succeeded"] == 5
    results = await results_of(kafka_bootstrap, topic_prefix, "dup-1", 5)
    assert sorted((r["index"], r["item_id"]) for r in results) == [
        (0, "a"),
        (1, "1"),
        (2, "b"),
        (3, "d"),
        (4, "c"),
    ]
    changelog = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire-part-ids-changelog",
        lambda rs: len(rs) >= 4,
        tombstones=True,
    )
    writes = [(r.key, bool(r.value)) for r in changelog]
    assert writes == [
        (b"acme/dup-1/000000/0000", True),
        (b"acme/dup-1/000001/0000", True),
        (b"acme/dup-1/000000/0000", False),
        (b"acme/dup-1/000001/0000", False),
    ]


async def test_ended_batches_hold_no_slot_and_their_results_end(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A batch cancelled while its second part is missing ends; the part that comes later is
    reported cancelled item by item and does not make the batch active again (it held one of
    the tenant's `BATCHWIRE_MAX_ACTIVE_BATCHES` for good). A rejected batch's results end
    at once (an empty page without a next cursor)."""
    worker = worker_factory()
    acme = {"Authorization": "Bearer key-acme"}

    def part(n: int, size: int) -> dict[str, Any]:
        items = [{"namespace": "batchwire", "action": "echo", "params": {"n": n}}] * size
        return {"batch_id": "late-1", "tenant": "acme", "part": n, "parts": 2, "items": items}

    async def status_when(
        client: httpx.AsyncClient, batch_id: str, done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        for _ in range(300):
            answer = await client.get(f"/v1/batches/{batch_id}", headers=acme)
            if answer.status_code == 200 and done(answer.json()):
                return dict(answer.json())
            await asyncio.sleep(0.1)
        raise AssertionError(f"batch {batch_id}: {answer.status_code} {answer.text}")

    async def active(client: httpx.AsyncClient) -> int:
        return int((await client.get("/internal/active/acme", headers=acme)).json()["active"])

    bad = {"batch_id": "bad-1", "tenant": "acme", "items": [{"id": "x"}]}
    await submit_json(kafka_bootstrap, topic_prefix, part(0, 3), bad)
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        await status_when(client, "late-1", lambda s: s["counters"]["processed"] == 3)
        assert await active(client) == 1
        assert (await client.post("/v1/batches/late-1/cancel", headers=acme)).status_code == 202
        ended = await status_when(client, "late-1", lambda s: s["finished_at"] is not None)
        assert (ended["status"], ended["counters"]["succeeded"]) == ("cancelled", 3)
        assert await active(client) == 0
        await submit_json(kafka_bootstrap, topic_prefix, part(1, 2))
        late = await status_when(client, "late-1", lambda s: s["counters"]["processed"] == 5)
        assert (late["status"], late["counters"]["cancelled"]) == ("cancelled", 2)
        assert await active(client) == 0
        page = await client.get("/v1/batches/late-1/results", headers=acme)
        assert [r["status"] for r in page.json()["results"]] == ["succeeded"] * 3 + [
            "cancelled"
        ] * 2
        assert page.json()["next_cursor"] is None
        rejected = await status_when(client, "bad-1", lambda s: s["status"] == "rejected")
        assert rejected["error"]["code"] == "invalid_batch_format"
        page = await client.get("/v1/batches/bad-1/results", headers=acme)
        assert page.json() == {"results": [], "next_cursor": None}


async def test_a_batch_without_id_gets_one(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker_factory()
    body = {"tenant": "acme", "items": [{"namespace": "batchwire", "action": "noop", "params": {}}]}
    await produce(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.batches",
        [(b"acme", json.dumps(body).encode())],
        headers=[("content-type", b"application/json")],
    )

    def has_final(records: list[Record]) -> bool:
        return any(r.decoded()["status"] == "completed" for r in records)

    records = await read_until(kafka_bootstrap, f"{topic_prefix}batchwire.status", has_final)
    batch_id = records[-1].decoded()["batch_id"]
    assert len(batch_id) == 36 and batch_id.count("-") == 4
