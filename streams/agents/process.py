"""Item processors: `batchwire.items` -> run each item -> `ItemResult` on `batchwire.results`.

Items of one group run one after another in submission order; different groups run
concurrently (`streams.lanes`). Fetched items wait in a queue that hands them out tenant by
tenant (`streams.fair`), so one tenant's backlog does not hold up another tenant's items.

The processors hold no state, so they read `batchwire.items` with a plain aiokafka consumer
group (`<app id>-process`) inside the worker rather than a Faust agent: Faust's consumer
spends a few tasks and an `asyncio.wait` on every message, which was most of the cost of a
no-op item.  Results go out in bundles per batch (`streams.result_bundles`): each result on
`batchwire.results`, and the bundle on the ledger for the aggregator.  An item's offset
counts as finished once its bundle has been handed to the producer, and the producer is
flushed before finished offsets are committed, so a crash re-runs an item (at least once;
the `Idempotency-Key` lets a target drop the repeat) but never loses one.  The aggregator
counts each item once however often it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from streams import codec
from streams.aggregation import ITEM_ERROR_CHARS
from streams.app import app, settings
from streams.bundled_results import bundled
from streams.clock import iso
from streams.controls import Controls
from streams.errors import CodecError
from streams.executors import HttpExecutor, Outcome, run_action
from streams.fair import FairQueue
from streams.handlers import ActionContext
from streams.item_processes import ItemProcesses
from streams.keys import batch_key
from streams.lanes import Job, Lanes
from streams.messages import item_result
from streams.metrics import metrics
from streams.offsets import OffsetTracker, OnRevoked, commit_finished, topic_lag
from streams.options import options
from streams.parts import MAX_MESSAGE_BYTES
from streams.publish import stop_worker
from streams.result_bundles import WITHIN_S, ResultBundler, publish_bundle
from streams.topics import controls as controls_topic
from streams.topics import items

log = logging.getLogger(__name__)

controls = Controls()
_FAILED_GROUPS_CAP = 100_000
#: (tenant/batch_id, group) of groups that failed here; the controls topic has the rest.
_failed_groups: OrderedDict[tuple[str, str], None] = OrderedDict()
COMMIT_INTERVAL_S = 1.0
#: the largest `ItemResult` a processor publishes: one Kafka message, with room to spare
#: for the bundle that carries it on the ledger
MAX_RESULT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
#: a worker whose lanes are full stops polling; it keeps its partitions this long
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000
STOP_GRACE_S = 10.0
#: items fetched and not yet started, at most, in release windows: a big batch's items in
#: flight all fit, and the next tenant's are read behind them
READ_AHEAD_WINDOWS = 4


@app.task
async def follow_controls() -> None:
    await controls.follow(settings.kafka_bootstrap, controls_topic.get_topic_name())


@app.task
async def process_items() -> None:
    """Run this worker's items: here, or in processes of their own (`--processes`)."""
    try:
        if options.processes:
            await ItemProcesses(options.processes).run()
        else:
            await ItemProcessor(settings.kafka_bootstrap, f"{app.conf.id}-process").run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await stop_worker(exc, "processing items")


class ItemProcessor:
    """This worker's share of `batchwire.items`: decode, queue on its lane, run, publish."""

    #: the processor of this worker, for `/metrics`
    current: ItemProcessor | None = None

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self.lanes = Lanes(options.concurrency, max_pending=options.concurrency * 2)
        self.queue: FairQueue[tuple[Hashable | None, Job]] = FairQueue(
            READ_AHEAD_WINDOWS * options.release_window
        )
        self.executor = HttpExecutor(
            settings.target_urls, retry_non_idempotent=options.retry_non_idempotent
        )
        self.tracker = OffsetTracker()
        #: whether the consumer has joined its group (had an assignment, maybe empty)
        self.joined = False
        self.bundler = ResultBundler(publish_bundle)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )

    async def run(self) -> None:
        """Take items until cancelled (the worker stopping)."""
        ItemProcessor.current = self
        await self.consumer.start()
        self.consumer.subscribe(
            [items.get_topic_name()], listener=OnRevoked(self.on_revoked, self._joined)
        )
        dispatcher = asyncio.ensure_future(self._dispatch())
        bundles = asyncio.ensure_future(self._send_bundles())
        try:
            last_commit = time.monotonic()
            while not (dispatcher.done() or bundles.done()):
                if self.queue.full():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self.queue.wait_for_room()
                else:
                    batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
                    for tp, records in batch.items():
                        for record in records:
                            self._take(tp, record)
                if time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                    await self.commit()
                    last_commit = time.monotonic()
            for task in (dispatcher, bundles):
                if task.done():
                    task.result()  # raises what stopped it
        finally:
            ItemProcessor.current = None
            dispatcher.cancel()
            bundles.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_GRACE_S):
                    await self.lanes.wait_idle()
                await self.commit()
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            await self.executor.aclose()

    async def _dispatch(self) -> None:
        """Queued items to the lanes, tenants in turn (`streams.fair`)."""
        while True:
            lane, job = await self.queue.get()
            await self.lanes.submit(lane, job)

    async def _send_bundles(self) -> None:
        """Send open result bundles every `WITHIN_S` while the processor is busy."""
        while True:
            await asyncio.sleep(WITHIN_S)
            await self.bundler.flush()

    def _take(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
        try:
            req = codec.decode_as("ItemRequested", record.value)
        except CodecError as exc:
            log.error("dropping an undecodable item at %s[%s]@%s: %s", *tp, record.offset, exc)
            return
        self.tracker.start(tp, record.offset)
        group = req["group"]
        lane = (req["tenant"], req["batch_id"], group) if group is not None else None
        self.queue.put(req["tenant"], (lane, self._job(req, tp, record.offset)))

    def _job(self, req: dict[str, Any], tp: TopicPartition, offset: int) -> Job:
        """Run the item, publish its result and bundle it for the aggregator, then mark its
        offset finished (once the bundle is sent)."""

        async def job() -> None:
            started = time.monotonic()
            result, raw = encoded_result(await run_item(req, self.executor))
            metrics.items_processed[result["status"]] += 1
            metrics.item_latency.observe(time.monotonic() - started)
            await self.bundler.add(
                req["tenant"],
                req["batch_id"],
                bundled(result, raw),
                lambda: self.tracker.done(tp, offset),
            )
            if self.lanes.busy <= 1 and not self.queue:
                await self.bundler.flush()  # nothing else to wait for

        return job

    async def commit(self) -> None:
        await self.bundler.flush()
        await commit_finished(self.consumer, self.tracker, app.producer.flush)

    def _joined(self) -> None:
        self.joined = True

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Commit what is finished; the new owner re-runs the rest (counted once)."""
        with contextlib.suppress(KafkaError, IllegalStateError):
            await self.commit()
        self.tracker.forget(revoked)

    async def lag(self) -> dict[str, int]:
        """Messages not yet fetched, per topic (for `/metrics`)."""
        return await topic_lag(self.consumer)


def encoded_result(result: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The result and its message. A result that cannot be one fails instead, without its
    output, headers and code, its errors cut short and made UTF-8: one too big (an action's
    huge output, an exception quoting a huge input), or one its schema cannot hold (a lone
    surrogate in a handler's output or error, a code past 32 bits). Otherwise the item would
    have no result (or a send that fails would stop the worker on every restart)."""
    try:
        raw = codec.encode("ItemResult", result)
    except CodecError as exc:
        why = f"the result could not be stored: {exc}"
    else:
        if len(raw) <= MAX_RESULT_BYTES:
            return result, raw
        why = (
            f"the result took {len(raw):,} bytes, more than the {MAX_RESULT_BYTES:,} a result "
            "may take: its output and headers were dropped"
        )
    errors = [why, *[str(e) for e in result["errors"] or []]]
    text = "; ".join(errors)[:ITEM_ERROR_CHARS].encode("utf-8", "replace").decode("utf-8")
    failed = {
        **result,
        "success": False,
        "status": "failed",
        "code": None,
        "headers": {},
        "output": None,
        "errors": [text],
    }
    return failed, codec.encode("ItemResult", failed)


def _skip_reason(req: dict[str, Any]) -> str | None:
    key = batch_key(req["tenant"], req["batch_id"])
    stop = controls.stop_reason(key)
    if stop is not None:
        return stop
    if time.time() >= req["deadline_at"]:
        return "timed_out"
    group = req["group"]
    if (
        group is not None
        and req["stop_on_failure"]
        and ((key, group) in _failed_groups or controls.group_failed(key, group))
    ):
        return "skipped"
    return None


_SKIP_ERRORS = {
    "cancelled": "the batch was cancelled before this item started",
    "timed_out": "the batch deadline passed before this item started",
    "skipped": "an earlier item of its group failed (stop_on_failure)",
}


async def run_item(req: dict[str, Any], executor: HttpExecutor) -> dict[str, Any]:
    """Run one item (unless its batch stopped) and build its `ItemResult`."""
    reason = _skip_reason(req)
    if reason is not None:
        return item_result(req, status=reason, errors=[_SKIP_ERRORS[reason]])
    started_at = iso()
    item = req["request"]
    try:
        outcome = await _execute(req, item, executor)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # an executor bug must not lose the item
        log.exception("item %s of batch %s crashed its executor", req["item_id"], req["batch_id"])
        outcome = Outcome(False, "failed", None, {}, None, [f"{type(exc).__name__}: {exc}"], 1)
    if not outcome.success and req["group"] is not None and req["stop_on_failure"]:
        _failed_groups[(batch_key(req["tenant"], req["batch_id"]), req["group"])] = None
        while len(_failed_groups) > _FAILED_GROUPS_CAP:
            _failed_groups.popitem(last=False)
    return item_result(
        req,
        status=outcome.status,
        code=outcome.code,
        headers=outcome.headers,
        output=outcome.output,
        errors=outcome.errors,
        attempts=outcome.attempts,
        started_at=started_at,
    )


async def _execute(req: dict[str, Any], item: dict[str, Any], executor: HttpExecutor) -> Outcome:
    if item.get("namespace") is not None:
        ctx = ActionContext(
            batch_id=req["batch_id"],
            tenant=req["tenant"],
            item_id=req["item_id"],
            headers=req["headers"],
        )
        return await run_action(item, ctx)
    return await executor.run(
        item,
        batch_id=req["batch_id"],
        tenant=req["tenant"],
        batch_headers=req["headers"],
        deadline_at=req["deadline_at"],
    )
