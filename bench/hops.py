"""Where a batch's time goes, hop by hop, from the timestamps Kafka keeps on each message.

A producer stamps every message with its clock when it is handed over (CreateTime), and
every process here shares one clock. For each batch, the stamp of its submission on
`batchwire.batches` is time zero; the last of its messages on each later topic says when
that step had produced all of its output: the exploder (`items`), the item processors
(`results`, and the bundles of the same results on the internal `ledger`), the aggregator
(the final `status`, the `callbacks` event) and the webhook connector (`deliveries`,
written once the receiver has answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.stats import percentile
from streams import codec
from streams.bundled_results import is_results_bundle
from streams.intake import content_type, decode_part
from streams.kafka_admin import partitions_of

#: the topics read after `batchwire.batches`, in pipeline order, and what each one's last
#: message of a batch says was done
HOPS = {
    "items": "items out (exploder)",
    "results": "results out (item processors)",
    "ledger": "result bundles out (item processors)",
    "status": "final status out (aggregator)",
    "callbacks": "callback event out (aggregator)",
    "deliveries": "delivery recorded (connector)",
}
TOPICS = ("batches", *HOPS)

Marks = dict[TopicPartition, int]


async def mark(bootstrap: str, prefix: str) -> Marks:
    """The end offsets of every topic now: `summary` reads what comes after them."""
    tps = [
        TopicPartition(f"{prefix}batchwire.{name}", p)
        for name in TOPICS
        for p in await partitions_of(bootstrap, f"{prefix}batchwire.{name}")
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


def _batch_of(name: str, record: Any) -> str | None:
    """The batch id a message belongs to (None when it cannot be read)."""
    try:
        if name == "batches":
            part = decode_part(record.value, content_type(record.headers))
            return str(part.get("batch_id"))
        if name == "items":
            return str(codec.decode_as("ItemRequested", record.value)["batch_id"])
        if name == "ledger":  # keyed by batch id; only result bundles are a hop here
            return record.key.decode() if is_results_bundle(record.value) else None
        return record.key.decode() if record.key else None
    except Exception:
        return None


#: how long `summary` waits for a batch's last hops once it has read to the end: the
#: connector records a delivery only after the receiver has answered, so the bench can see
#: the callback before the record is on `batchwire.deliveries`
SETTLE_S = 5.0


async def summary(
    bootstrap: str, marks: Marks, batch_ids: Iterable[str]
) -> dict[str, dict[str, float]]:
    """p50 and p90 (ms after the submission) of each hop's last message, over `batch_ids`."""
    wanted = set(batch_ids)
    # batch id -> topic -> the latest stamp (the earliest for the submission)
    stamps: dict[str, dict[str, int]] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(marks))
        for tp, offset in marks.items():
            consumer.seek(tp, offset)
        settle_until = time.monotonic() + SETTLE_S
        for _ in range(10_000):  # bounded: each round takes what has arrived
            ends = await consumer.end_offsets(list(marks))
            positions = [await consumer.position(tp) for tp in marks]
            if all(at >= ends[tp] for at, tp in zip(positions, marks, strict=True)):
                complete = all(len(stamps.get(b, {})) == len(TOPICS) for b in wanted)
                if complete or time.monotonic() >= settle_until:
                    break
                await asyncio.sleep(0.05)
                continue
            fetched = await consumer.getmany(timeout_ms=500)
            for tp, records in fetched.items():
                name = tp.topic.rsplit("batchwire.", 1)[-1]
                for record in records:
                    batch_id = _batch_of(name, record)
                    if batch_id not in wanted:
                        continue
                    seen = stamps.setdefault(batch_id, {})
                    keep = min if name == "batches" else max
                    seen[name] = keep(seen.get(name, record.timestamp), record.timestamp)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    out: dict[str, dict[str, float]] = {}
    for name in HOPS:
        delays = [
            float(s[name] - s["batches"]) for s in stamps.values() if "batches" in s and name in s
        ]
        if delays:
            out[name] = {
                "p50_ms": percentile(delays, 50),
                "p90_ms": percentile(delays, 90),
                "samples": len(delays),
            }
    return out
