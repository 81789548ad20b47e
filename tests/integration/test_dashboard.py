"""The dashboard in a real headless Chromium (Debian's `chromium`): batches with progress bars,
per tenant, refreshing by itself.  The screenshot is kept in `artifacts/dashboard.png`."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.fixtures.targets import TargetApi
from tests.fixtures.workers import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ACME = {"Authorization": "Bearer key-acme"}


async def chromium(url: str, profile: Path, *extra: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (scripts/test installs it as root)")
    proc = await asyncio.create_subprocess_exec(
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,720",
        "--virtual-time-budget=4000",
        *extra,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return out.decode(errors="replace")


async def test_the_dashboard_shows_batches_moving(
    worker_factory: WorkerFactory, target_api: TargetApi, tmp_path: Path
) -> None:
    worker = worker_factory({"BATCHWIRE_TARGET_URLS": f"acme={target_api.url}"})
    slow = [
        {"id": f"s{i}", "method": "GET", "path": f"/slow/250?i={i}", "group": "g"}
        for i in range(40)
    ]
    quick = [{"id": "q", "namespace": "batchwire", "action": "echo", "params": {}}]
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        for body in ({"batch_id": "moving", "items": slow}, {"batch_id": "done", "items": quick}):
            answer = await client.post("/v1/tenants/acme/batches", json=body, headers=ACME)
            assert answer.status_code == 202
        for _ in range(200):
            status = (await client.get("/v1/batches/moving", headers=ACME)).json()
            if status.get("counters", {}).get("processed", 0) >= 3:
                break
            await asyncio.sleep(0.1)

    url = f"{worker.url}/dashboard#key=key-acme"
    dom = await chromium(url, tmp_path / "profile", "--dump-dom")
    rows = dict(re.findall(r'<tr data-batch="([^"]+)" data-status="([^"]+)"', dom))
    assert rows == {"moving": "in_progress", "done": "completed"}
    processed, posted = map(
        int,
        re.search(r'data-processed="(\d+)" data-posted="(\d+)"', dom).groups(),  # type: ignore[union-attr]
    )
    assert posted == 40 and 0 < processed < 40
    assert "acme" in dom and "in_progress 1" in dom and "completed 1" in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    await chromium(url, tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


async def test_the_dashboard_needs_a_key(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    async with httpx.AsyncClient(base_url=worker.url) as client:
        page = await client.get("/dashboard")
        assert page.status_code == 200 and "<table>" in page.text
        assert (await client.get("/v1/dashboard")).status_code == 401
        other = await client.get("/v1/dashboard", headers={"Authorization": "Bearer key-globex"})
        assert other.json() == {"tenants": {}, "batches": []}

        # 103 batches: every one counted, the 100 last updated shown, without metadata
        quick = [{"id": "q", "namespace": "batchwire", "action": "echo", "params": {}}]
        for n in range(103):
            body = {"batch_id": f"b{n:03d}", "items": quick, "metadata": {"pad": "x" * 1000}}
            answer = await client.post("/v1/tenants/acme/batches", json=body, headers=ACME)
            assert answer.status_code == 202
        for _ in range(300):
            data = (await client.get("/v1/dashboard", headers=ACME)).json()
            if data["tenants"].get("acme", {}).get("completed") == 103:
                break
            await asyncio.sleep(0.1)
        assert data["tenants"] == {"acme": {"completed": 103}}
        assert len(data["batches"]) == 100
        assert "metadata" not in data["batches"][0]
        updated = [b["updated_at"] for b in data["batches"]]
        assert updated == sorted(updated, reverse=True)
