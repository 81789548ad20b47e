"""A worker's item-processor processes (`batchwire worker --processes N`).

A worker's event loop runs on one core. On one big batch, decoding, running and encoding its
items took about a third of that core, beside the exploder, the aggregator and Kafka's
client (bench/README.md, "Item-processor processes"). With `--processes N` the items run in
N processes of their own (`streams.item_process_main`), on other cores, and the worker's
process keeps the Faust agents, the tables and the HTTP views.

The processes run the worker's own `ItemProcessor` in the processors' consumer group, so the
guarantees do not change: an item's offset is committed only once its result is on Kafka,
and the items of a process that dies go to the group's other members. A process that exits
while the worker runs is a fault: the worker stops, as it does when its own processor fails,
and is started again by whatever supervises it. The processes end with the worker: on its
stop they get SIGTERM (and SIGKILL after a grace), when it ends at its stop deadline SIGKILL
(`streams.stop_deadline`), and when it is killed their stdin, a pipe from the worker, ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import asdict
from typing import Any, ClassVar

from streams import cluster_watch, stop_deadline
from streams.options import options

log = logging.getLogger(__name__)

#: seconds a process gets to finish its running items and commit before it is killed (its
#: processor waits up to `streams.agents.process.STOP_GRACE_S` for the items)
STOP_GRACE_S = 15.0


class ItemProcessExited(RuntimeError):
    """An item-processor process ended while its worker runs."""


class ItemProcesses:
    """Start the item-processor processes, follow their reports, stop them with the worker."""

    #: the worker's running processes, for `/metrics`
    current: ClassVar[ItemProcesses | None] = None

    def __init__(self, count: int) -> None:
        self.count = count
        #: each process's latest report: `Metrics.item_report` and its consumer lag
        self.reports: dict[int, dict[str, Any]] = {}

    async def run(self) -> None:
        """Run the processes until the worker stops (cancelled) or one of them ends."""
        procs: list[asyncio.subprocess.Process] = []
        followers: list[asyncio.Future[tuple[int, int]]] = []
        ItemProcesses.current = self
        try:
            for number in range(self.count):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "streams.item_process_main",
                    json.dumps(asdict(options)),
                    logging.getLevelName(logging.getLogger().getEffectiveLevel()),
                    cluster_watch.expected() or "",  # the worker's: its state is of that one
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                procs.append(proc)
                stop_deadline.end_with_me(proc.pid)
                followers.append(asyncio.ensure_future(self._follow(number, proc)))
            log.info("started %d item-processor processes", self.count)
            done, _ = await asyncio.wait(followers, return_when=asyncio.FIRST_COMPLETED)
            number, code = done.pop().result()
            raise ItemProcessExited(f"item-processor process {number} exited with status {code}")
        finally:
            ItemProcesses.current = None
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*(_stop(proc) for proc in procs))

    async def _follow(self, number: int, proc: asyncio.subprocess.Process) -> tuple[int, int]:
        """Keep the process's reports (a JSON line each) until it exits."""
        assert proc.stdout is not None
        async for line in proc.stdout:
            with contextlib.suppress(ValueError):
                self.reports[number] = json.loads(line)
        return number, await proc.wait()

    def joined(self) -> bool:
        """Whether every process has reported that its consumer joined the group."""
        return len(self.reports) == self.count and all(
            report.get("joined") for report in self.reports.values()
        )

    def lag(self) -> dict[str, int]:
        """The processes' consumer lag per topic, as they last reported it."""
        out: dict[str, int] = {}
        for report in self.reports.values():
            for topic, count in report.get("lag", {}).items():
                out[topic] = out.get(topic, 0) + count
        return out


def ready() -> bool:
    """Whether the worker's item processes, if it runs any, are in their consumer group (for
    `/healthz`: items released before then wait for them)."""
    current = ItemProcesses.current
    return not options.processes or (current is not None and current.joined())


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    try:
        async with asyncio.timeout(STOP_GRACE_S):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    stop_deadline.let_go(proc.pid)
