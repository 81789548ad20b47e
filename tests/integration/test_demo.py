"""The README's first command: `scripts/demo --exit-when-done` runs everything and ends by
itself."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


async def test_demo_runs_every_shape_to_the_end() -> None:
    env = _demo_env()
    # the README's command itself: `scripts/demo` once handed its own arguments to the venv
    # setup it sources, and failed with `--exit-when-done` while `batchwire demo` worked
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "scripts" / "demo"),
        "--exit-when-done",
        env={**env, "BATCHWIRE_VENV": str(Path(sys.executable).parent.parent)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=400)
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert len(re.findall(r"^submitted demo-", text, re.M)) == 5
    assert re.search(r"all 5 batches ended; \d+ callbacks received, 0 with a bad signature", text)
    assert "completed_with_errors" in text  # the REST batch's 404 is reported, not hidden
    assert "/dashboard#key=demo-key" in text
    assert text.rstrip().endswith(
        "stopped the worker, the connector, the demo servers and the broker"
    )


async def test_sigterm_stops_the_demo_and_everything_it_started() -> None:
    """`kill`, `timeout` or a closed terminal must not leave the broker, the worker and the
    connector running (a plain signal handler waited for the demo's idle loop to wake)."""
    proc = await _demo_until("keeps running")
    children = _children(proc.pid)
    assert len(children) >= 3  # the broker, the worker and the connector
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert (
        out.decode()
        .rstrip()
        .endswith("stopped the worker, the connector, the demo servers and the broker")
    )
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


async def test_a_demo_killed_by_sigkill_leaves_nothing_running() -> None:
    """SIGKILL runs no cleanup: the kernel stops the broker, the worker and the connector
    (`streams.child_process`), which used to keep running, holding their ports."""
    proc = await _demo_until("worker ready")
    children = _children(proc.pid)
    assert len(children) >= 3, children  # the broker, the worker and the connector
    proc.kill()
    await proc.wait()
    try:
        for _ in range(180):  # at most 90 s: Kafka's own shutdown takes a few seconds
            alive = [pid for pid in children if _running(pid)]
            if not alive:
                break
            await asyncio.sleep(0.5)
        assert not alive, f"still running after the demo was killed: {alive}"
    finally:
        for pid in children:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


async def _demo_until(text: str) -> asyncio.subprocess.Process:
    """`batchwire demo`, started and read until a line of its output holds `text`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        "demo",
        env=_demo_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(400):
        while not seen or text not in seen[-1]:
            line = (await proc.stdout.readline()).decode()
            assert line, "".join(seen)[-3000:]
            seen.append(line)
    return proc


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a killed demo's children are reaped by
    init, but a zombie's /proc entry lingers until then)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _demo_env() -> dict[str, str]:
    """The demo runs its own broker and settings; only the jar cache is shared."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BATCHWIRE_") or k == "BATCHWIRE_CACHE_DIR"
    }


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found
