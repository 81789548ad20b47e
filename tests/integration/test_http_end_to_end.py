"""Each of the contract's five batch APIs driven over HTTP alone on two workers: submit to
one, poll and fetch results from the other, and see the callback event."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.fixtures.kafka_io import read_until
from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACME = {"Authorization": "Bearer key-acme"}
HOOK = "https://hooks.example.test/acme"


async def _poll(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    for _ in range(400):
        answer = await client.get(f"/v1/batches/{batch_id}", headers=ACME)
        if answer.status_code == 200 and answer.json()["finished_at"]:
            return dict(answer.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"{batch_id} did not end")


async def _results(client: httpx.AsyncClient, batch_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor: str | None = "0"
    while cursor is not None:
        page = (
            await client.get(
                f"/v1/batches/{batch_id}/results",
                params={"cursor": cursor, "limit": 2},
                headers=ACME,
            )
        ).json()
        out.extend(page["results"])
        cursor = page["next_cursor"]
    return out


async def test_five_batch_apis_over_http_on_two_workers(
    worker_factory: WorkerFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    target_api: TargetApi,
) -> None:
    env = {"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"}
    first, second = worker_factory(env), worker_factory(env)
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=60) as a,
        httpx.AsyncClient(base_url=second.url, timeout=60) as b,
    ):
        for _ in range(300):  # both workers hold partitions once the rebalance is over
            ready = [(await c.get("/healthz")).json()["ready"] for c in (a, b)]
            if all(ready):
                break
            await asyncio.sleep(0.2)

        async def submit(body: dict[str, Any]) -> str:
            answer = await a.post("/v1/tenants/acme/batches", json=body, headers=ACME)
            assert answer.status_code == 202, answer.text
            return str(answer.json()["batch_id"])

        # 1. endpoint batch invocation with per-item callbacks
        api1 = await submit(
            {
                "batch_id": "api1",
                "callback": {"url": HOOK, "mode": "item"},
                "items": [
                    {"id": "e1", "method": "POST", "path": "/echo/e1", "body": {"v": 1}},
                    {"id": "e2", "method": "POST", "path": "/status/500"},
                ],
            }
        )
        # 2. namespace/action jobs with a completion callback
        api2 = await submit(
            {
                "batch_id": "api2",
                "callback": {"url": HOOK},
                "metadata": {"asyncId": "api2"},
                "items": [
                    {"id": "j1", "namespace": "batchwire", "action": "echo", "params": {"q": 1}}
                ],
            }
        )
        # 3. sequential REST batch
        api3 = await submit(
            {
                "batch_id": "api3",
                "callback": {"url": HOOK},
                "stop_on_failure": False,
                "items": [
                    {"id": str(i), "method": "PUT", "path": f"/echo/seq/{i}", "group": "seq"}
                    for i in range(4)
                ],
            }
        )
        # 4. polled batch jobs with stages
        api4 = await submit(
            {
                "batch_id": "api4",
                "callback": {"url": HOOK, "mode": "both"},
                "items": [
                    {"id": "c1", "namespace": "batchwire", "action": "echo", "params": {}},
                    {
                        "id": "o1",
                        "namespace": "batchwire",
                        "action": "echo",
                        "params": {},
                        "stage": 1,
                    },
                ],
            }
        )
        # 5. /v1/batch, synchronous, with a callback URL
        sync = await b.post(
            "/v1/batch",
            params={"callback_url": HOOK},
            json=[{"id": "r1", "method": "GET", "path": "/echo/r1", "transaction": "t"}],
            headers=ACME,
        )
        assert sync.status_code == 200, sync.text
        assert sync.json()[0]["code"] == 200

        statuses = {bid: await _poll(b, bid) for bid in (api1, api2, api3, api4)}
        assert statuses["api1"]["status"] == "completed_with_errors"
        assert statuses["api2"]["metadata"] == {"asyncId": "api2"}
        assert statuses["api4"]["counters"]["posted"] == 2
        results = {bid: await _results(b, bid) for bid in (api1, api2, api3, api4)}
        assert [r["item_id"] for r in results["api3"]] == ["0", "1", "2", "3"]
        assert [p for p in target_api.paths() if p.startswith("/echo/seq/")] == [
            f"/echo/seq/{i}" for i in range(4)
        ]
        assert results["api2"][0]["output"] == {"q": 1}
        assert results["api1"][1]["code"] == 500

    calls = await read_until(
        kafka_bootstrap,
        f"{topic_prefix}batchwire.callbacks",
        lambda rs: (
            {r.decoded()["batch_id"] for r in rs} >= {"api1", "api2", "api3", "api4"}
            and sum(1 for r in rs if r.decoded()["mode"] == "batch") >= 4
        ),
    )
    decoded = [c.decoded() for c in calls]
    modes = sorted((c["batch_id"], c["mode"]) for c in decoded if c["batch_id"].startswith("api"))
    assert modes == [
        ("api1", "item"),
        ("api1", "item"),
        ("api2", "batch"),
        ("api3", "batch"),
        ("api4", "batch"),
        ("api4", "item"),
        ("api4", "item"),
    ]
    sync_callback = [c for c in decoded if not c["batch_id"].startswith("api")]
    assert len(sync_callback) == 1 and sync_callback[0]["payload"]["status"] == "completed"
