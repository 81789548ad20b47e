"""Item processors: `batchwire.items` -> run each item -> `ItemResult` on `batchwire.results`.

Items of one group run one after another in submission order; different groups run
concurrently (`streams.lanes`).  An item's offset is acknowledged only after its result has
been handed to the producer, and Faust flushes the producer before it commits, so a crash
re-runs an item (at least once; the `Idempotency-Key` lets a target drop the repeat) but
never loses one.  The aggregator counts each item once however often it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any, cast

import faust

from streams import codec
from streams.app import app, settings
from streams.clock import iso
from streams.controls import Controls
from streams.errors import CodecError
from streams.executors import HttpExecutor, Outcome, run_action
from streams.handlers import ActionContext
from streams.keys import batch_key
from streams.lanes import Job, Lanes
from streams.messages import item_result
from streams.metrics import metrics
from streams.options import options
from streams.publish import publish
from streams.topics import controls as controls_topic
from streams.topics import items, results

log = logging.getLogger(__name__)

controls = Controls()
_FAILED_GROUPS_CAP = 100_000
#: (tenant/batch_id, group) of groups that failed here; the controls topic has the rest.
_failed_groups: OrderedDict[tuple[str, str], None] = OrderedDict()


@app.task
async def follow_controls() -> None:
    await controls.follow(settings.kafka_bootstrap, controls_topic.get_topic_name())


@app.agent(items, name="process")
async def process(stream: faust.StreamT[bytes]) -> None:
    lanes = Lanes(options.concurrency)
    executor = HttpExecutor(settings.target_urls, retry_non_idempotent=options.retry_non_idempotent)
    try:
        async for event in cast(faust.Stream[bytes], stream).noack().events():
            try:
                req = codec.decode_as("ItemRequested", event.value)
            except CodecError as exc:
                log.error(
                    "dropping an undecodable item at %s[%s]@%s: %s",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                    exc,
                )
                event.ack()
                continue
            group = req["group"]
            lane = (req["tenant"], req["batch_id"], group) if group is not None else None
            await lanes.submit(lane, _job(req, event, executor))
    finally:
        with contextlib.suppress(Exception):
            await lanes.wait_idle()
        await executor.aclose()


def _job(req: dict[str, Any], event: faust.EventT, executor: HttpExecutor) -> Job:
    """Run the item, publish its result, then acknowledge its offset (in that order)."""

    async def job() -> None:
        started = time.monotonic()
        result = await run_item(req, executor)
        metrics.items_processed[result["status"]] += 1
        metrics.item_latency.observe(time.monotonic() - started)
        await publish(results, req["batch_id"].encode(), codec.encode("ItemResult", result))
        event.ack()

    return job


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
