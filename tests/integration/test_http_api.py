"""The HTTP API on real workers and the real broker."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
import pytest

from streams.localkafka import LocalBroker
from streams.parts import split_parts
from streams.settings import Secret
from tests.fixtures.kafka_io import produce, read_for, submit_json
from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory, WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACME = {"Authorization": "Bearer key-acme"}
GLOBEX = {"Authorization": "Bearer key-globex"}


def jobs(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"j{i}", "namespace": "batchwire", "action": "echo", "params": {"i": i}, **extra}
        for i in range(n)
    ]


async def _wait_final(client: httpx.AsyncClient, batch_id: str, headers: dict[str, str]) -> Any:
    for _ in range(300):
        answer = await client.get(f"/v1/batches/{batch_id}", headers=headers)
        if answer.status_code == 200 and answer.json()["finished_at"]:
            return answer.json()
        await asyncio.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not end")


async def _status_url_answers_at_once(client: httpx.AsyncClient, batch_ids: list[str]) -> None:
    """Each batch submitted, then its 202's status_url asked at once: it answers (most
    lookups made right after a 202 were 404s for a few milliseconds)."""
    for batch_id in batch_ids:
        sent = await client.post(
            "/v1/tenants/acme/batches", json={"batch_id": batch_id, "items": jobs(1)}, headers=ACME
        )
        assert sent.status_code == 202, sent.text
        looked_up = await client.get(sent.json()["status_url"], headers=ACME)
        assert looked_up.status_code == 200, (batch_id, looked_up.text)


async def test_submit_wait_status_and_paged_results(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        items = [*jobs(5), {"id": "bad", "namespace": "no", "action": "such", "params": {}}]
        answer = await client.post(
            "/v1/tenants/acme/batches?wait=20",
            json={"batch_id": "w-1", "metadata": {"asyncId": "w-1"}, "items": items},
            headers=ACME,
        )
        assert answer.status_code == 200, answer.text
        done = answer.json()
        assert done["status"] == "completed_with_errors"
        assert [r["item_id"] for r in done["results"]] == ["j0", "j1", "j2", "j3", "j4", "bad"]
        assert done["metadata"] == {"asyncId": "w-1"}
        assert done["item_errors"] == {"bad": "unknown action no/such"}
        assert done["next_cursor"] is None

        accepted = await client.post(
            "/v1/tenants/acme/batches", json={"items": jobs(7)}, headers=ACME
        )
        assert accepted.status_code == 202
        body = accepted.json()
        assert body["status"] == "accepted"
        assert body["status_url"].endswith(f"/v1/batches/{body['batch_id']}?tenant=acme")
        await _status_url_answers_at_once(client, [f"now-{n}" for n in range(20)])
        await _wait_final(client, body["batch_id"], ACME)
        pages: list[list[str]] = []
        cursor: str | None = "0"
        while cursor is not None:
            page = await client.get(
                f"/v1/batches/{body['batch_id']}/results",
                params={"cursor": cursor, "limit": 3},
                headers=ACME,
            )
            pages.append([r["item_id"] for r in page.json()["results"]])
            cursor = page.json()["next_cursor"]
        assert pages == [["j0", "j1", "j2"], ["j3", "j4", "j5"], ["j6"]]
        failed = await client.get(
            "/v1/batches/w-1/results", params={"status": "failed"}, headers=ACME
        )
        assert [r["item_id"] for r in failed.json()["results"]] == ["bad"]
        unknown = await client.get(
            "/v1/batches/w-1/results", params={"status": "bogus"}, headers=ACME
        )
        assert unknown.status_code == 422
        assert unknown.json()["error"]["code"] == "invalid_batch_format"


async def test_wait_answer_holds_the_first_results_and_a_cursor_to_the_rest(
    worker_factory: WorkerFactory,
) -> None:
    """A `?wait` answer holds at most 10,000 results (not a whole big batch built in the
    worker's memory); its next_cursor continues on results_url."""
    worker = worker_factory()
    count = 10_050
    items = [
        {"id": f"n{i}", "namespace": "batchwire", "action": "noop", "params": {}}
        for i in range(count)
    ]
    async with httpx.AsyncClient(base_url=worker.url, timeout=150) as client:
        answer = await client.post(
            "/v1/tenants/acme/batches?wait=120",
            json={"batch_id": "w-big", "items": items},
            headers=ACME,
        )
        assert answer.status_code == 200, answer.text
        done = answer.json()
        assert done["status"] == "completed"
        assert [r["item_id"] for r in done["results"]] == [f"n{i}" for i in range(10_000)]
        assert done["next_cursor"] is not None
        rest = await client.get(
            done["results_url"], params={"cursor": done["next_cursor"]}, headers=ACME
        )
        assert [r["item_id"] for r in rest.json()["results"]] == [
            f"n{i}" for i in range(10_000, count)
        ]
        assert rest.json()["next_cursor"] is None


async def test_errors_carry_the_contract_codes(worker_factory: WorkerFactory) -> None:
    worker = worker_factory({"BATCHWIRE_MAX_ITEMS": "5"})
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:

        async def code_of(response: httpx.Response) -> tuple[int, str]:
            return response.status_code, response.json()["error"]["code"]

        submit = "/v1/tenants/acme/batches"
        cases = {
            "no key": (await client.post(submit, json={"items": jobs(1)}), (401, "unauthorized")),
            "wrong key": (
                await client.post(
                    submit, json={"items": jobs(1)}, headers={"Authorization": "Bearer nope"}
                ),
                (401, "unauthorized"),
            ),
            "other tenant": (
                await client.post(submit, json={"items": jobs(1)}, headers=GLOBEX),
                (403, "tenant_not_allowed"),
            ),
            "tenant not allowed": (
                await client.post(
                    "/v1/tenants/initech/batches",
                    json={"items": jobs(1)},
                    headers={"Authorization": "Bearer key-initech"},
                ),
                (403, "tenant_not_allowed"),
            ),
            "malformed json": (
                await client.post(
                    submit,
                    content=b'{"items": [',
                    headers={**ACME, "Content-Type": "application/json"},
                ),
                (400, "invalid_json"),
            ),
            "wrong content type": (
                await client.post(
                    submit, content=b"items=1", headers={**ACME, "Content-Type": "text/plain"}
                ),
                (400, "invalid_json"),
            ),
            "bad shape": (
                await client.post(submit, json={"items": [{"id": "x"}]}, headers=ACME),
                (422, "invalid_batch_format"),
            ),
            "empty parameter": (
                await client.post(submit, json={"items": jobs(1, params=None)}, headers=ACME),
                (422, "empty_parameter"),
            ),
            "duplicate ids": (
                await client.post(submit, json={"items": jobs(1) * 2}, headers=ACME),
                (422, "duplicate_item_id"),
            ),
            "empty batch": (
                await client.post(submit, json={"items": []}, headers=ACME),
                (422, "empty_batch"),
            ),
            "too many items": (
                await client.post(submit, json={"items": jobs(6)}, headers=ACME),
                (413, "too_many_items"),
            ),
            "unknown batch": (
                await client.get("/v1/batches/nope", headers=ACME),
                (404, "not_found"),
            ),
            "unknown route": (await client.get("/v2/nothing", headers=ACME), (404, "not_found")),
            "wrong method": (await client.delete(submit, headers=ACME), (405, "not_found")),
            "NaN": (
                await client.post(
                    submit,
                    content=b'{"items": [{"namespace": "a", "action": "b", "params": NaN}]}',
                    headers={**ACME, "Content-Type": "application/json"},
                ),
                (400, "invalid_json"),
            ),
            # Python reads it as infinity: it would be published, then refused by the
            # exploder without a batch_id (the batch never got a status)
            "a number past a float's range": (
                await client.post(
                    submit,
                    content=b'{"items": [{"method": "POST", "path": "/x", "body": 1e999}]}',
                    headers={**ACME, "Content-Type": "application/json"},
                ),
                (400, "invalid_json"),
            ),
        }
        for name, (response, expected) in cases.items():
            assert await code_of(response) == expected, name
        bad = await client.post(submit, json={"items": [{"id": "x"}]}, headers=ACME)
        assert bad.json()["error"]["details"][0]["path"] == "$.items[0]"


async def test_idempotent_submit_conflict_isolation_and_cancel(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        body = {"batch_id": "idem-1", "items": [{**j, "id": f"ü-{j['id']}-✓"} for j in jobs(3)]}
        first = await client.post("/v1/tenants/acme/batches", json=body, headers=ACME)
        assert first.status_code == 202
        final = await _wait_final(client, "idem-1", ACME)
        assert final["counters"]["succeeded"] == 3
        again = await client.post("/v1/tenants/acme/batches", json=body, headers=ACME)
        assert again.status_code == 202 and again.json()["batch_id"] == "idem-1"
        assert again.json()["status"] == "completed"  # where the batch is, not `accepted`
        other = await client.post(
            "/v1/tenants/acme/batches", json={**body, "items": jobs(2)}, headers=ACME
        )
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "batch_conflict"
        hidden = await client.get("/v1/batches/idem-ü", headers=GLOBEX)
        assert hidden.status_code == 404
        hidden_results = await client.get("/v1/batches/idem-ü/results", headers=GLOBEX)
        assert hidden_results.status_code == 404

        slow = [
            {"id": f"s{i}", "method": "GET", "path": f"/slow/300?i={i}", "group": "g"}
            for i in range(30)
        ]
        started = await client.post(
            "/v1/tenants/acme/batches", json={"batch_id": "cx", "items": slow}, headers=ACME
        )
        assert started.status_code == 202
        for _ in range(100):
            cancel = await client.post("/v1/batches/cx/cancel", headers=ACME)
            if cancel.status_code == 202:
                break
            await asyncio.sleep(0.1)
        assert cancel.status_code == 202
        cancelled = await _wait_final(client, "cx", ACME)
        assert cancelled["status"] == "cancelled"
        assert cancelled["counters"]["processed"] == 30
        assert cancelled["counters"]["cancelled"] >= 20
        assert len(target_api.seen) < 10
    items = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.items", 2.0)
    mine = sorted(r.decoded()["item_id"] for r in items if r.decoded()["batch_id"] == "idem-1")
    assert mine == ["ü-j0-✓", "ü-j1-✓", "ü-j2-✓"]


async def test_keys_never_reach_the_log(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        for headers in (ACME, {"Authorization": "Bearer not-a-key-9f8e7d"}):
            await client.post("/v1/tenants/acme/batches", json={"items": jobs(1)}, headers=headers)
            await client.get("/v1/batches/nope", headers=headers)
    worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "key-acme" not in log and "not-a-key-9f8e7d" not in log
    assert repr(Secret("key-acme")) == "Secret('****')"


async def test_concurrent_submits_of_one_batch_make_one_batch(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    worker = worker_factory()
    body = {"batch_id": "race-1", "items": jobs(4)}
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/tenants/acme/batches", json=body, headers=ACME) for _ in range(20))
        )
        assert {a.status_code for a in answers} == {202}
        assert {a.json()["batch_id"] for a in answers} == {"race-1"}
        final = await _wait_final(client, "race-1", ACME)
    assert final["counters"]["posted"] == final["counters"]["processed"] == 4
    items = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.items", 3.0)
    assert sorted(r.decoded()["item_id"] for r in items if r.decoded()["batch_id"] == "race-1") == [
        "j0",
        "j1",
        "j2",
        "j3",
    ]


async def test_a_retry_of_a_batch_published_in_part_publishes_the_rest(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A submit that died after publishing part 0 of 3 (or one whose parts are still on
    their way): the identical retry is the same batch (202, not 409) and publishes the parts
    not recorded yet; every item runs once."""
    worker = worker_factory()
    pad = "x" * 2000
    body = {"batch_id": "half-http", "items": jobs(1000, params={"pad": pad})}
    parts = split_parts({**body, "tenant": "acme"})
    assert len(parts) == 3
    await submit_json(kafka_bootstrap, topic_prefix, parts[0])
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        for _ in range(100):  # until the exploder recorded part 0
            recorded = await client.get("/internal/submissions/acme/half-http", headers=ACME)
            if recorded.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert set(recorded.json()["hashes"]) == {"0"}
        retry = await client.post("/v1/tenants/acme/batches", json=body, headers=ACME)
        assert retry.status_code == 202
        final = await _wait_final(client, "half-http", ACME)
        other = await client.post(
            "/v1/tenants/acme/batches", json={**body, "items": body["items"][:-1]}, headers=ACME
        )
        assert other.json()["error"]["code"] == "batch_conflict"
    assert final["counters"]["posted"] == final["counters"]["succeeded"] == 1000
    items = await read_for(kafka_bootstrap, f"{topic_prefix}batchwire.items", 3.0)
    ran = [r.decoded()["item_id"] for r in items if r.decoded()["batch_id"] == "half-http"]
    assert sorted(ran) == sorted(f"j{i}" for i in range(1000))


async def test_any_worker_answers_any_lookup(worker_factory: WorkerFactory) -> None:
    first = worker_factory()
    second = worker_factory()
    await _both_ready(first, second)
    ids = [f"two-{n}" for n in range(6)]  # spread over partitions: some owned by each worker
    async with httpx.AsyncClient(timeout=30) as client:
        for batch_id in ids:
            answer = await client.post(
                f"{first.url}/v1/tenants/acme/batches",
                json={"batch_id": batch_id, "items": jobs(2)},
                headers=ACME,
            )
            assert answer.status_code == 202
        for batch_id in ids:
            for _ in range(200):
                a = await client.get(f"{first.url}/v1/batches/{batch_id}", headers=ACME)
                if a.status_code == 200 and a.json()["finished_at"]:
                    break
                await asyncio.sleep(0.2)
            b = await client.get(f"{second.url}/v1/batches/{batch_id}", headers=ACME)
            assert a.status_code == b.status_code == 200
            assert a.json() == b.json()
            ra = await client.get(f"{first.url}/v1/batches/{batch_id}/results", headers=ACME)
            rb = await client.get(f"{second.url}/v1/batches/{batch_id}/results", headers=ACME)
            assert ra.json() == rb.json() and len(ra.json()["results"]) == 2


async def _both_ready(*workers: WorkerProcess) -> None:
    """After the second worker joined, both have partitions (the rebalance is over)."""
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(300):
            states = [(await client.get(f"{w.url}/healthz")).json()["ready"] for w in workers]
            if all(states):
                return
            await asyncio.sleep(0.2)
    raise AssertionError("the two workers did not both become ready")


async def test_v1_batch_answers_in_order_with_inherited_headers(
    worker_factory: WorkerFactory, target_api: TargetApi
) -> None:
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    requests = [
        {"id": "1", "method": "POST", "path": "/echo/a", "body": {"n": 1}, "transaction": "t"},
        {"id": "2", "method": "GET", "path": "/status/409", "transaction": "t"},
        {"id": "3", "method": "GET", "path": "/echo/after-failure", "transaction": "t"},
        {"id": 4, "method": "PUT", "path": "/echo/b", "headers": {"X-Trace": "own"}},
    ]
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        answer = await client.post(
            "/v1/batch",
            content=gzip.compress(json.dumps(requests).encode()),  # the batch's own encoding
            headers={
                **ACME,
                "X-Trace": "batch-trace",
                "X-Hop": "h",
                "Connection": "X-Hop",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        )
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert [(a["id"], a["code"]) for a in got] == [
            ("1", 200),
            ("2", 409),
            ("3", 424),
            (4, 200),  # an integer id is answered as one
        ]
        assert got[0]["body"] == {"method": "POST", "path": "/echo/a", "body": {"n": 1}}
        assert got[1]["body"] == {"reason": "status 409"}
        seen = {s.path: s.headers for s in target_api.seen}
        assert seen["/echo/a"]["x-trace"] == "batch-trace"
        assert "authorization" not in seen["/echo/a"]
        assert "x-hop" not in seen["/echo/a"]  # named by `Connection`: hop-by-hop
        assert "content-encoding" not in seen["/echo/a"]  # the batch's body's, not the item's
        assert "content-type" not in seen["/status/409"]  # a GET without a body
        assert seen["/echo/b"]["x-trace"] == "own"
        assert "/echo/after-failure" not in seen

        too_many = await client.post("/v1/batch", json=requests * 26, headers=ACME)
        assert too_many.status_code == 413
        not_a_list = await client.post("/v1/batch", json={"id": "1"}, headers=ACME)
        assert not_a_list.json()["error"]["code"] == "invalid_batch_format"
        bad_item = await client.post("/v1/batch", json=[{"id": "x"}], headers=ACME)
        assert bad_item.json()["error"]["details"][0]["path"] == "$[0]"
        bad_transaction = [{"id": "t", "method": "GET", "path": "/a", "transaction": 5}]
        answer = await client.post("/v1/batch", json=bad_transaction, headers=ACME)
        assert answer.json()["error"]["details"][0]["path"] == "$[0].transaction"


async def test_a_key_of_several_tenants_waits_for_and_links_to_its_own_batch(
    worker_factory: WorkerFactory,
) -> None:
    """Two tenants of one key each run a batch under the same id: `?wait`, the URLs given
    and the callback's `results_url` name the tenant, so each answer is its own batch."""
    worker = worker_factory({"BATCHWIRE_TENANT_KEYS": "acme=shared;globex=shared"})
    shared = {"Authorization": "Bearer shared"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        first = await client.post(
            "/v1/tenants/acme/batches", json={"batch_id": "twin", "items": jobs(2)}, headers=shared
        )
        assert first.status_code == 202
        await _wait_final(client, "twin?tenant=acme", shared)
        second = await client.post(
            "/v1/tenants/globex/batches?wait=30",
            json={"batch_id": "twin", "items": jobs(3)},
            headers=shared,
        )
        assert second.status_code == 200
        done = second.json()
        assert (done["tenant"], len(done["results"])) == ("globex", 3)
        assert done["status_url"].endswith("/v1/batches/twin?tenant=globex")
        assert done["results_url"].endswith("/v1/batches/twin/results?tenant=globex")
        for url, tenant in ((first.json()["status_url"], "acme"), (done["status_url"], "globex")):
            status = await client.get(url, headers=shared)
            assert (status.json()["tenant"], status.json()["status"]) == (tenant, "completed")
        page = await client.get(done["results_url"], headers=shared)
        assert [r["output"]["i"] for r in page.json()["results"]] == [0, 1, 2]


async def test_multi_tenant_submit_answers_200_or_207(worker_factory: WorkerFactory) -> None:
    worker = worker_factory({"BATCHWIRE_TENANT_KEYS": "acme=shared;globex=shared;initech=shared"})
    shared = {"Authorization": "Bearer shared"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        everyone = await client.post(
            "/v1/batches:multi-tenant",
            json={"tenants": ["acme", "globex"], "batch": {"batch_id": "mt-1", "items": jobs(2)}},
            headers=shared,
        )
        assert everyone.status_code == 200
        assert everyone.json()["postedSuccess"] == {"acme": "mt-1", "globex": "mt-1"}
        assert everyone.json()["postedProblems"] == {}
        some = await client.post(
            "/v1/batches:multi-tenant",
            json={"tenants": ["acme", "initech", "umbrella"], "batch": {"items": jobs(1)}},
            headers=shared,
        )
        assert some.status_code == 207
        body = some.json()
        assert list(body["postedSuccess"]) == ["acme"]
        assert {t: [e["code"] for e in errs] for t, errs in body["postedProblems"].items()} == {
            "initech": ["tenant_not_allowed"],
            "umbrella": ["tenant_not_allowed"],
        }
        too_many = [f"t{n}" for n in range(101)]
        for tenants in ([], ["acme", "acme"], too_many):  # none, one twice, over 100
            refused = await client.post(
                "/v1/batches:multi-tenant",
                json={"tenants": tenants, "batch": {"items": jobs(1)}},
                headers=shared,
            )
            assert refused.status_code == 422
            assert refused.json()["error"]["code"] == "invalid_batch_format"
        for tenant in ("acme", "globex"):
            status = await _wait_final(client, f"mt-1?tenant={tenant}", shared)
            assert (status["tenant"], status["counters"]["succeeded"]) == (tenant, 2)


async def test_limits_metrics_and_openapi(
    worker_factory: WorkerFactory, target_api: TargetApi
) -> None:
    worker = worker_factory(
        {"BATCHWIRE_MAX_ACTIVE_BATCHES": "1", "BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"}
    )
    async with httpx.AsyncClient(base_url=worker.url, timeout=60) as client:
        slow = [{"id": "s", "method": "GET", "path": "/slow/3000"}]
        first = await client.post(
            "/v1/tenants/acme/batches", json={"batch_id": "busy", "items": slow}, headers=ACME
        )
        assert first.status_code == 202
        for _ in range(100):  # the batch counts as active once the aggregator has its part
            status = await client.get("/v1/batches/busy", headers=ACME)
            if status.status_code == 200:
                break
            await asyncio.sleep(0.1)
        second = await client.post(
            "/v1/tenants/acme/batches", json={"items": jobs(1)}, headers=ACME
        )
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "too_many_active_batches"
        assert int(second.headers["Retry-After"]) > 0
        other_tenant = await client.post(
            "/v1/tenants/globex/batches", json={"items": jobs(1)}, headers=GLOBEX
        )
        assert other_tenant.status_code == 202
        await _wait_final(client, "busy", ACME)

        huge = b'{"items": [' + b" " * (65 * 1024 * 1024) + b"]}"
        too_big = await client.post(
            "/v1/tenants/acme/batches",
            content=huge,
            headers={**ACME, "Content-Type": "application/json"},
        )
        assert too_big.status_code == 413

        text = (await client.get("/metrics")).text
        assert 'batchwire_items_processed_total{status="succeeded"}' in text
        assert 'batchwire_batches_total{status="completed"}' in text
        assert "batchwire_item_latency_seconds_count" in text
        assert 'batchwire_consumer_lag{topic="' in text

        document = (await client.get("/openapi.json")).json()
        assert set(document["paths"]) == {
            "/v1/tenants/{tenant}/batches",
            "/v1/batch",
            "/v1/batches:multi-tenant",
            "/v1/batches/{batch_id}",
            "/v1/batches/{batch_id}/results",
            "/v1/batches/{batch_id}/cancel",
            "/healthz",
            "/metrics",
        }
        for path, methods in document["paths"].items():
            url = path.replace("{tenant}", "acme").replace("{batch_id}", "busy")
            for method in methods:
                answer = await client.request(method.upper(), url, headers=ACME)
                assert answer.status_code not in (404, 405) or answer.headers.get(
                    "content-type", ""
                ).startswith("application/json"), (method, path, answer.status_code)


async def test_ndjson_submit_is_streamed_into_parts(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    padding = "x" * 600
    lines = [
        json.dumps(
            {"id": f"n{i}", "namespace": "batchwire", "action": "noop", "params": {"p": padding}}
        )
        for i in range(3000)
    ]
    ndjson = {**ACME, "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=120) as client:
        answer = await client.post(
            "/v1/tenants/acme/batches",
            params={"batch_id": "nd-1", "metadata": '{"source": "ndjson"}', "wait": "120"},
            content="\n".join(lines).encode(),
            headers=ndjson,
        )
        assert answer.status_code == 200, answer.text[:300]
        done = answer.json()
        assert done["parts"] >= 2 and done["parts_received"] == done["parts"]
        assert done["counters"]["succeeded"] == 3000
        assert done["metadata"] == {"source": "ndjson"}
        assert [r["item_id"] for r in done["results"][:3]] == ["n0", "n1", "n2"]
        assert [r["index"] for r in done["results"]] == list(range(3000))

        broken = await client.post(
            "/v1/tenants/acme/batches", content=b'{"namespace": "a"}\n{oops', headers=ndjson
        )
        assert broken.status_code == 400
        assert broken.json()["error"]["details"][0]["path"] == "line 2"
        bad_item = [lines[0], lines[1], json.dumps({"method": "", "path": "/x"})]
        invalid = await client.post(
            "/v1/tenants/acme/batches", content="\n".join(bad_item).encode(), headers=ndjson
        )
        assert invalid.status_code == 422
        assert invalid.json()["error"]["details"][0]["path"] == "line 3: $.method"
        again = await client.post(
            "/v1/tenants/acme/batches",
            params={"batch_id": "nd-1"},
            content="\n".join(lines[:10]).encode(),
            headers=ndjson,
        )
        assert again.status_code == 409


async def test_a_submit_kafka_does_not_take_is_503_and_safe_to_send_again(
    own_broker: LocalBroker, worker_factory: WorkerFactory
) -> None:
    """With the broker down, a submit answers 503 `unavailable` (Retry-After, the batch id)
    within the send timeout instead of hanging or stopping the worker; a multi-tenant submit
    stops at the first such tenant. Sent again once the broker is back (and again while the
    worker, rejoining its group, answers 503), the batch runs once (the first copy may have
    reached Kafka after all)."""
    env = {
        "BATCHWIRE_KAFKA_BOOTSTRAP": own_broker.bootstrap,
        "BATCHWIRE_TENANT_KEYS": "acme=key-both;globex=key-both",
    }
    worker = await asyncio.to_thread(worker_factory, env)
    both = {"Authorization": "Bearer key-both"}
    body = {"batch_id": "down-1", "items": jobs(3)}
    async with httpx.AsyncClient(base_url=worker.url, timeout=90) as client:
        ready = await client.post(
            "/v1/tenants/acme/batches?wait=30", json={"items": jobs(1)}, headers=both
        )
        assert ready.status_code == 200, ready.text
        await asyncio.to_thread(own_broker.stop)
        down, multi = await asyncio.gather(  # at once: each waits out the send timeout
            client.post("/v1/tenants/acme/batches", json=body, headers=both),
            client.post(
                "/v1/batches:multi-tenant",
                json={"tenants": ["acme", "globex"], "batch": {"items": jobs(1)}},
                headers=both,
            ),
        )
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "unavailable"
        assert down.json()["error"]["details"] == [{"batch_id": "down-1"}]
        assert down.headers["Retry-After"] == "5"
        assert multi.status_code == 207, multi.text
        problems = multi.json()["postedProblems"]
        assert [problems[t][0]["code"] for t in ("acme", "globex")] == ["unavailable"] * 2
        assert "not tried" in problems["globex"][0]["message"]
        await asyncio.to_thread(own_broker.start, keep_data=True)
        # as a client would: again while the worker, back in its group, answers 503
        for _ in range(30):  # bounded: ~30 s past the first answer
            again = await client.post("/v1/tenants/acme/batches?wait=60", json=body, headers=both)
            if again.status_code != 503:
                break
            assert again.json()["error"]["code"] == "unavailable", again.text
            await asyncio.sleep(1)
        assert again.status_code == 200, again.text
        assert again.json()["counters"]["posted"] == 3
        assert again.json()["counters"]["succeeded"] == 3


async def test_a_lookup_routed_to_a_dead_worker_is_503_until_its_partitions_move(
    worker_factory: WorkerFactory,
) -> None:
    """A status lookup is forwarded to the worker that owns the batch's partition; with that
    worker killed (kill -9) and its partitions not yet moved, the lookup answers 503
    `unavailable` with a Retry-After (not aiohttp's plain 500), and the batch's status once
    the survivor has taken the partitions over."""
    fast_failover = ("--session-timeout", "8")
    first = await asyncio.to_thread(worker_factory, args=fast_failover)
    second = await asyncio.to_thread(worker_factory, args=fast_failover)
    batch_ids = [f"owner-{i}" for i in range(16)]  # spread over both workers' partitions
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as client:
        # owned by the worker asked or by the other
        await _status_url_answers_at_once(client, [f"now-{i}" for i in range(16)])
        for batch_id in batch_ids:
            done = await client.post(
                "/v1/tenants/acme/batches?wait=30",
                json={"batch_id": batch_id, "items": jobs(1)},
                headers=ACME,
            )
            assert done.status_code == 200, done.text
        await asyncio.to_thread(second.stop, kill=True)
        answers = [await client.get(f"/v1/batches/{b}", headers=ACME) for b in batch_ids]
        assert {a.status_code for a in answers} == {200, 503}, [a.text for a in answers]
        dead = [a for a in answers if a.status_code == 503]
        assert {a.json()["error"]["code"] for a in dead} == {"unavailable"}
        assert {a.headers["Retry-After"] for a in dead} == {"5"}
        waiting = set(batch_ids)
        for _ in range(150):  # bounded: ~60 s for the session timeout and the rebalance
            for batch_id in sorted(waiting):
                answer = await client.get(f"/v1/batches/{batch_id}", headers=ACME)
                assert answer.status_code in (200, 503), answer.text
                if answer.status_code == 200:
                    assert answer.json()["status"] == "completed"
                    waiting.discard(batch_id)
            if not waiting:
                break
            await asyncio.sleep(0.4)
        assert not waiting, f"still not answered after the rebalance: {sorted(waiting)}"


async def test_a_batch_is_accepted_before_its_first_part_reaches_the_aggregator(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str, target_api: TargetApi
) -> None:
    """An HTTP submit tells the aggregator at once (an `accepted` event on the ledger), so
    status and cancel answer before the exploder's first part gets there (behind a backlog
    on batchwire.batches, that can be long). Played here for a batch whose part comes only
    later: it is `accepted`, a cancel is taken, and its part, when it comes, ends cancelled
    without running an item."""
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    ledger = f"{topic_prefix}batchwire.ledger"
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        answer = await client.post(
            "/v1/tenants/acme/batches", json={"batch_id": "early-0", "items": jobs(1)}, headers=ACME
        )
        assert answer.status_code == 202
        records = await read_for(kafka_bootstrap, ledger, 2.0)
        events = [r.value for r in records if r.key == b"early-0" and r.value.startswith(b"{")]
        accepted = {"type": "accepted", "tenant": "acme", "batch_id": "early-0"}
        assert [json.loads(e) for e in events] == [accepted]  # parts and bundles are binary

        early = json.dumps({**accepted, "batch_id": "early-1"}).encode()
        await produce(kafka_bootstrap, ledger, [(b"early-1", early)])
        for _ in range(100):
            status = await client.get("/v1/batches/early-1", headers=ACME)
            if status.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert status.status_code == 200, status.text
        assert status.json()["status"] == "accepted"
        assert status.json()["counters"]["posted"] == 0
        cancel = await client.post("/v1/batches/early-1/cancel", headers=ACME)
        assert cancel.status_code == 202, cancel.text

        slow = [{"id": f"s{i}", "method": "GET", "path": f"/slow/300?i={i}"} for i in range(30)]
        await submit_json(
            kafka_bootstrap, topic_prefix, {"batch_id": "early-1", "tenant": "acme", "items": slow}
        )
        final = await _wait_final(client, "early-1", ACME)
        assert final["status"] == "cancelled"
        assert final["counters"]["posted"] == 30
        assert final["counters"]["processed"] == 30
        assert final["counters"]["cancelled"] == 30
        assert target_api.seen == []
