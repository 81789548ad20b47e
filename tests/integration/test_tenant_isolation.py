"""Issue 7, scenario 6 (the hostile half): a lookup with another tenant's key, a wrong key,
no key or a crafted batch id never reveals a batch, and a foreign cancel cancels nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

KEYS = {
    "acme": {"Authorization": "Bearer key-acme"},
    "globex": {"Authorization": "Bearer key-globex"},
    "initech": {"Authorization": "Bearer key-initech"},  # a key, but not an allowed tenant
    "wrong": {"Authorization": "Bearer key-acme-but-not"},
    "empty": {"Authorization": "Bearer"},
    "basic": {"Authorization": "Basic a2V5LWFjbWU="},
    "none": {},
}
SLOW_ITEMS = 12  # one group of GET /slow/250: the batch runs ~3 s, long enough to cancel


def crafted(batch_id: str) -> list[str]:
    """Ids a foreign caller might try for `batch_id`, already escaped for a URL path."""
    raw = [
        batch_id,
        batch_id.upper(),
        f"{batch_id} ",
        f"{batch_id}\u200b",
        f"acme/{batch_id}",
        f"../acme/{batch_id}",
        f"..%2Facme%2F{batch_id}",
        f"%2e%2e%2f{batch_id}",
        f"{batch_id}/",
        f"{batch_id}\x00",
        f"{batch_id}%00",
        f"*{batch_id}*",
        "*",
        "é" * 300,
        "x" * 4000,
    ]
    escaped = [quote(text, safe="") for text in raw]
    return [*escaped, f"..%2F..%2Fv1%2Fbatches%2F{batch_id}", "%2E", "%2E%2E", "%2e%2e%2F"]


async def lookups(
    client: httpx.AsyncClient, batch_id: str, headers: dict[str, str]
) -> list[httpx.Response]:
    """Status, results and cancel of one (escaped) id with one set of headers."""
    base = f"/v1/batches/{batch_id}"
    return [
        await client.get(base, headers=headers),
        await client.get(f"{base}/results", headers=headers),
        await client.get(f"{base}/results?tenant=acme", headers=headers),
        await client.get(f"{base}?tenant=acme", headers=headers),
        await client.post(f"{base}/cancel", headers=headers),
    ]


def assert_reveals_nothing(answer: httpx.Response, secrets: list[str], what: str) -> None:
    assert answer.status_code in (401, 404), (what, answer.status_code, answer.text[:300])
    for secret in secrets:
        assert secret not in answer.text, (what, answer.text[:300])
    if answer.headers.get("content-type", "").startswith("application/json"):
        body = answer.json()
        assert set(body) == {"error"}, (what, body)
        assert body["error"]["code"] == (
            "unauthorized" if answer.status_code == 401 else "not_found"
        )


async def test_foreign_keys_and_crafted_ids_never_reveal_or_cancel_a_batch(
    worker_factory: WorkerFactory, target_api: TargetApi
) -> None:
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    secret_a, secret_g = f"acme-{uuid.uuid4().hex}", f"globex-{uuid.uuid4().hex}"
    slow = [
        {"id": f"s{i}-{secret_a}", "method": "GET", "path": f"/slow/250?s={secret_a}", "group": "g"}
        for i in range(SLOW_ITEMS)
    ]
    echo = {"namespace": "batchwire", "action": "echo"}
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:

        async def submit(tenant: str, body: dict[str, Any]) -> None:
            answer = await client.post(
                f"/v1/tenants/{tenant}/batches", json=body, headers=KEYS[tenant]
            )
            assert answer.status_code == 202, answer.text

        await submit("acme", {"batch_id": "iso-a", "items": slow, "metadata": {"s": secret_a}})
        for tenant, secret in (("acme", secret_a), ("globex", secret_g)):  # one id, two tenants
            items = [{**echo, "id": "1", "params": {"s": secret}}]
            await submit(tenant, {"batch_id": "shared", "items": items, "metadata": {"s": secret}})
        await submit(
            "globex", {"batch_id": "iso-g", "items": [{**echo, "params": {"s": secret_g}}]}
        )
        await wait_status(client, "iso-a", "acme", lambda s: s["processed"] >= 1)

        # while iso-a runs: every foreign lookup and cancel, with every id variant
        checked = 0
        for who in ("globex", "initech", "wrong", "empty", "basic", "none"):
            for batch_id in crafted("iso-a"):
                for answer in await lookups(client, batch_id, KEYS[who]):
                    assert_reveals_nothing(answer, [secret_a], f"{who} {batch_id[:40]}")
                    checked += 1
        for batch_id in crafted("iso-g")[1:]:  # the owner's key with crafted ids
            for answer in await lookups(client, batch_id, KEYS["globex"]):
                assert_reveals_nothing(answer, [secret_g], f"globex {batch_id[:40]}")
                checked += 1
        for answer in await lookups(client, "iso-g", KEYS["acme"]):
            assert_reveals_nothing(answer, [secret_g], "acme on globex's batch")
        assert checked > 500

        done = await wait_status(client, "iso-a", "acme", lambda s: s["finished_at"] is not None)
        assert done["status"] == "completed", done
        assert done["counters"]["succeeded"] == SLOW_ITEMS
        assert done["counters"].get("cancelled", 0) == 0
        assert done["metadata"] == {"s": secret_a}  # the owner sees it: the check can fail
        for tenant, secret, other in (("acme", secret_a, secret_g), ("globex", secret_g, secret_a)):
            state = await wait_status(
                client, "shared", tenant, lambda s: s["finished_at"] is not None
            )
            assert state["metadata"] == {"s": secret}
            results = await client.get("/v1/batches/shared/results", headers=KEYS[tenant])
            assert secret in results.text and other not in results.text
    assert worker.proc is not None and worker.proc.poll() is None


async def wait_status(
    client: httpx.AsyncClient, batch_id: str, tenant: str, done: Any, attempts: int = 300
) -> dict[str, Any]:
    for _ in range(attempts):
        answer = await client.get(f"/v1/batches/{batch_id}", headers=KEYS[tenant])
        if answer.status_code == 200:
            state: dict[str, Any] = answer.json()
            if done(state.get("counters", {}) | state):
                return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"batch {batch_id} of {tenant}: condition not met")
