"""Faults: nothing accepted is lost or counted twice (issue 7, scenarios 1-4).

One body per fault; `tests/fixtures/soak.py` picks the scale: a bounded CI profile by
default, the soak with `BATCHWIRE_SOAK=1` (`scripts/soak`).  Every scenario ends in
`tests.fixtures.accounting.account`, which checks the final state against what was
submitted and prints a `FAULT-FIGURES` line.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable, Sequence

import httpx
import pytest

from streams.localkafka import LocalBroker
from tests.fixtures.accounting import (
    HANDLER_MODULES,
    HEADERS,
    account,
    fault_batch,
    submit_in_parts,
    wait_final_status,
)
from tests.fixtures.receivers import Receiver
from tests.fixtures.soak import chance, items, pick, profile
from tests.fixtures.workers import WorkerFactory, WorkerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.reliability,
    pytest.mark.timeout(pick(300, 1500)),
]

#: how long a scenario may take to end once its faults are over (bounded, generous: the
#: machine is shared)
END_TIMEOUT = float(pick(180, 900))
#: a killed worker's partitions move after this many seconds (faust's default is 60)
FAST_FAILOVER = ("--session-timeout", "10")
#: milliseconds each item takes (a group's items one after another): enough that a batch
#: outlasts its faults however fast the pipeline has become
WORK_MS = pick(40, 5)


async def batch_ended(url: str, batch_id: str) -> bool:
    """True once the batch has a final status (False while unknown or unreachable)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(
                f"{url}/v1/batches/{batch_id}", headers={"Authorization": "Bearer key-acme"}
            )
        return answer.status_code == 200 and bool(answer.json().get("finished_at"))
    except httpx.HTTPError:
        return False


async def lookups_until(
    done: asyncio.Event, workers: Callable[[], list[WorkerProcess]], batch_id: str
) -> Counter[str]:
    """Ask each worker for the batch's status every 50 ms until `done` (bounded: 20 min),
    and count the answers. Each must be the batch's status, or the contract's 503
    `unavailable` (a worker taking partitions over, or forwarding to one that died); a 404,
    a 500 or faust's own 503 body fails. A worker that does not listen is stopped or starting."""
    kinds: Counter[str] = Counter()
    deadline = time.monotonic() + 1200
    async with httpx.AsyncClient(timeout=10) as client:
        while not done.is_set() and time.monotonic() < deadline:
            for worker in workers():
                try:
                    answer = await client.get(
                        f"{worker.url}/v1/batches/{batch_id}", headers=HEADERS
                    )
                except httpx.TransportError:
                    kinds["not listening"] += 1
                    continue
                if answer.status_code == 200:
                    assert answer.json()["batch_id"] == batch_id, answer.text
                else:
                    assert answer.status_code == 503, (worker.url, answer.status_code, answer.text)
                    assert answer.json()["error"]["code"] == "unavailable", answer.text
                kinds[str(answer.status_code)] += 1
            await asyncio.sleep(0.05)
    return kinds


async def delivered_share(
    receiver: Receiver, wanted: set[str], share: float, timeout: float
) -> float:
    """Wait (bounded) until `share` of the wanted callbacks arrived; return the share."""
    for _ in range(int(timeout / 0.2)):
        arrived = len(wanted & receiver.delivered_ids()) / len(wanted)
        if arrived >= share:
            return arrived
        await asyncio.sleep(0.2)
    return len(wanted & receiver.delivered_ids()) / len(wanted)


async def restart(process: WorkerProcess, *, kill: bool, wait_ready: bool = True) -> None:
    """Stop (SIGTERM or SIGKILL) and start again, off the event loop (receivers live on it)."""
    await asyncio.to_thread(process.stop, kill=kill)
    await asyncio.to_thread(process.start, wait_ready=wait_ready)


@pytest.mark.parametrize(
    "processes", [(), ("--processes", "1")], ids=["items-in-the-worker", "item-process"]
)
async def test_kill_9_a_worker_at_random_moments(
    worker_factory: WorkerFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    processes: tuple[str, ...],
) -> None:
    """Scenario 1: one worker, kill -9 at random moments during a big batch, restarted.
    Then one more kill -9 and a restart on an empty data dir (a lost disk): the worker
    rebuilds its tables from their changelogs alone, so they must hold every write of the
    runs before, even one that a kill caught between the local store and the changelog.
    With `--processes 1`, each kill also ends the worker's item process (its items go to
    the next one)."""
    n, kills = items(3000, 100_000), pick(3, 10)
    worker = await asyncio.to_thread(
        worker_factory, HANDLER_MODULES, args=(*FAST_FAILOVER, *processes)
    )
    batch, submitted = fault_batch("kill-9", n, work_ms=WORK_MS)
    started = time.monotonic()
    await submit_in_parts(kafka_bootstrap, topic_prefix, batch)
    moments = chance("kill-9")
    assert await wait_final_status([worker.url], submitted.batch_id, 60, final=False)
    rebuilt = asyncio.Event()
    lookups = asyncio.ensure_future(lookups_until(rebuilt, lambda: [worker], submitted.batch_id))
    # a worker moves ~2,500 of these items/s between kills here: every kill falls within
    # the batch's life (at an 18 s pause, made for ~500 items/s, it ended after 6 of 10)
    longest_pause = pick(3, max(3, n // 2500 // (kills + 1)))
    injected = 0
    for _ in range(kills):  # bounded: at most `kills` kills, none after the batch ended
        await asyncio.sleep(moments.uniform(0.3, longest_pause))
        if await batch_ended(worker.url, submitted.batch_id):
            break
        await restart(worker, kill=True)
        injected += 1
    assert injected >= 1, "the batch ended before the first kill: nothing was tested"
    await asyncio.to_thread(worker.stop, kill=True)
    worker.env["BATCHWIRE_DATA_DIR"] += "-rebuilt"
    await asyncio.to_thread(worker.start, wait_ready=False)
    await asyncio.to_thread(worker.wait_ready, END_TIMEOUT)  # rebuilding takes a while
    rebuilt.set()
    looked_up = await lookups
    assert looked_up["200"] > 0, looked_up
    await account(
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        submitted=submitted,
        urls=[worker.url],
        fault=" ".join(["worker kill -9", *processes, f"({profile()})"]),
        injected=injected + 1,
        started=started,
        timeout=END_TIMEOUT,
        notes=[
            "the last restart on an empty data dir (tables rebuilt from their changelogs)",
            f"lookups during the kills: {looked_up}",
        ],
    )


async def test_workers_join_leave_and_die_mid_batch(
    worker_factory: WorkerFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Scenario 2: two and three workers; workers join, leave (SIGTERM) and die (kill -9)
    mid-batch, so partitions move between them; every worker answers every lookup, all
    the while (`lookups_until`)."""
    n, rounds = items(1500, 20_000), pick(1, 3)
    first = await asyncio.to_thread(worker_factory, HANDLER_MODULES, args=FAST_FAILOVER)
    second = await asyncio.to_thread(worker_factory, HANDLER_MODULES, args=FAST_FAILOVER)
    batch, submitted = fault_batch("rebalance", n, work_ms=WORK_MS)
    started = time.monotonic()
    await submit_in_parts(kafka_bootstrap, topic_prefix, batch)
    moments = chance("rebalance")
    third: WorkerProcess | None = None
    changes: list[str] = []
    # known (it is a 404 until the exploder has read its first part), then asked throughout
    assert await wait_final_status([first.url], submitted.batch_id, 60, final=False)
    changed = asyncio.Event()
    lookups = asyncio.ensure_future(
        lookups_until(changed, lambda: [w for w in (first, second, third) if w], submitted.batch_id)
    )
    for _ in range(rounds):  # bounded: `rounds` x (join, leave, die, rejoin)
        if await batch_ended(first.url, submitted.batch_id):
            break
        await asyncio.sleep(moments.uniform(0.5, 2))
        if third is None:
            third = await asyncio.to_thread(worker_factory, HANDLER_MODULES, args=FAST_FAILOVER)
        else:
            await asyncio.to_thread(third.start)
        changes.append("join")  # 3 workers
        await asyncio.sleep(moments.uniform(0.5, 2))
        await asyncio.to_thread(first.stop)
        changes.append("leave")  # 2 workers
        await asyncio.sleep(moments.uniform(0.5, 2))
        await asyncio.to_thread(second.stop, kill=True)
        changes.append("kill -9")  # 1 worker
        await asyncio.sleep(moments.uniform(0.5, 2))
        await asyncio.to_thread(first.start)
        await asyncio.to_thread(second.start)
        changes.append("rejoin x2")  # 3 workers
        if rounds > 1:
            await asyncio.to_thread(third.stop)  # the next round starts from 2 workers
            changes.append("leave")
    changed.set()
    looked_up = await lookups
    assert third is not None, "the batch ended before the first change: nothing was tested"
    assert looked_up["200"] > 0, looked_up
    urls = [w.url for w in (first, second, third) if w.proc and w.proc.poll() is None]
    await account(
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        submitted=submitted,
        urls=urls,
        fault=f"workers join/leave/kill -9, 1-3 workers ({profile()})",
        injected=len(changes),
        started=started,
        timeout=END_TIMEOUT,
        notes=[f"lookups through {len(urls)} workers", f"lookups during the changes: {looked_up}"],
    )


class Supervisor:
    """Restart a worker whose process exited, as systemd or Kubernetes would."""

    def __init__(self, workers: Sequence[WorkerProcess]) -> None:
        self.workers = workers
        self.exits: list[int | None] = []

    async def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for worker in self.workers:
                if worker.proc is not None and worker.proc.poll() is not None:
                    self.exits.append(worker.proc.returncode)
                    await asyncio.to_thread(worker.start, wait_ready=False)
            await asyncio.sleep(1)


async def test_the_broker_stops_and_restarts_mid_batch(
    own_broker: LocalBroker, worker_factory: WorkerFactory, topic_prefix: str
) -> None:
    """Scenario 3: the broker stopped and restarted (same port, same data) mid-batch; the
    pipeline resumes with no manual step.  A supervisor restarts a worker that exits; the
    figures say whether it had to.  (`own_broker` comes first so that it is torn down
    after the workers, which then leave the group at once.)"""
    n, outages, outage_s = items(1500, 20_000), pick(1, 3), pick(10, 30)
    bootstrap = own_broker.bootstrap
    env = {**HANDLER_MODULES, "BATCHWIRE_KAFKA_BOOTSTRAP": bootstrap}
    worker = await asyncio.to_thread(worker_factory, env, args=FAST_FAILOVER)
    supervisor = Supervisor([worker])
    supervising = asyncio.ensure_future(supervisor.run(END_TIMEOUT + outages * 120))
    try:
        batch, submitted = fault_batch("broker-restart", n, work_ms=WORK_MS)
        started = time.monotonic()
        await submit_in_parts(bootstrap, topic_prefix, batch)
        moments = chance("broker")
        injected = 0
        for _ in range(outages):  # bounded: `outages` stops, each restarted
            # within a few seconds of running: at soak scale the batch's 20,000 items take
            # ~10-15 s on a quiet machine, and waits of up to 20 s let it end unstopped
            await asyncio.sleep(moments.uniform(1, pick(3, 5)))
            if await batch_ended(worker.url, submitted.batch_id):
                break
            await asyncio.to_thread(own_broker.stop)
            injected += 1
            await asyncio.sleep(outage_s)
            await asyncio.to_thread(own_broker.start, keep_data=True)
        await account(
            bootstrap=bootstrap,
            prefix=topic_prefix,
            submitted=submitted,
            urls=[worker.url],
            fault=f"broker stop/restart, {outage_s}s outage ({profile()})",
            injected=injected,
            started=started,
            timeout=END_TIMEOUT,
            notes=[f"worker exits restarted by the supervisor: {supervisor.exits}"],
        )
    finally:
        supervising.cancel()
    assert injected >= 1, "the batch ended before the broker stopped: nothing was tested"


KEY = b"k" * 32
CONNECTOR_ENV = {
    "BATCHWIRE_WEBHOOK_SECRETS": "acme=whsec_" + base64.b64encode(KEY).decode(),
    "BATCHWIRE_CALLBACK_ALLOW_NETS": "127.0.0.0/8",
    "BATCHWIRE_RETRY_SCHEDULE": "0,0.5,1,1,2,2,4,4,8",
}


async def test_the_connector_is_killed_mid_delivery(
    worker_factory: WorkerFactory,
    connector_factory: WorkerFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    receiver: Receiver,
) -> None:
    """Scenario 4: callbacks `both` on a batch; the connector kill -9'd mid-delivery and
    restarted; every callback arrives at least once (duplicates counted by webhook-id)."""
    n, kills = items(1000, 10_000), pick(2, 5)
    worker = await asyncio.to_thread(
        worker_factory, {**CONNECTOR_ENV, **HANDLER_MODULES}, args=FAST_FAILOVER
    )
    connector = await asyncio.to_thread(connector_factory, CONNECTOR_ENV)
    batch, submitted = fault_batch("callbacks", n, callback_url=f"{receiver.url}/hook")
    started = time.monotonic()
    await submit_in_parts(kafka_bootstrap, topic_prefix, batch)
    known = await wait_final_status([worker.url], submitted.batch_id, 60, final=False)
    assert known is not None, "the batch was never registered"
    wanted = submitted.callback_ids(known["created_at"])
    moments = chance("connector")
    injected = 0
    for k in range(1, kills + 1):  # bounded: `kills` kills, each once a share has arrived
        share = moments.uniform(k - 0.8, k - 0.2) / kills  # k-th kill within the k-th 1/kills
        arrived = await delivered_share(receiver, wanted, share, END_TIMEOUT / kills)
        if arrived >= 1.0:
            break
        await restart(connector, kill=True, wait_ready=False)
        injected += 1
    await account(
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        submitted=submitted,
        urls=[worker.url],
        fault=f"connector kill -9, callbacks 'both' ({profile()})",
        injected=injected,
        started=started,
        timeout=END_TIMEOUT,
        receiver=receiver,
    )
    assert injected >= 1, "every callback arrived before the first kill: nothing was tested"
