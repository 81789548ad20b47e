"""The README's first command: `batchwire demo` runs everything and ends by itself."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_demo_runs_every_shape_to_the_end() -> None:
    # the demo runs its own broker and settings; only the jar cache is shared
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BATCHWIRE_") or k == "BATCHWIRE_CACHE_DIR"
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        "demo",
        "--exit-when-done",
        env=env,
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
