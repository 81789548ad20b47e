"""Time one batch of no-op actions through a running worker: submit on the topic, stop at its
final `BatchStatus`, print items/s.  For a worker you run yourself; `scripts/bench` runs
the whole side-by-side benchmark (issue 8) with its own processes.

    .venv/bin/batchwire kafka up --port 9092 &&
    BATCHWIRE_KAFKA_BOOTSTRAP=127.0.0.1:9092 BATCHWIRE_ALLOWED_TENANTS=acme \\
      BATCHWIRE_TOPIC_PREFIX=bench. .venv/bin/batchwire worker &
    .venv/bin/python bench/one_batch.py --bootstrap 127.0.0.1:9092 --prefix bench. --items 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams import codec
from streams.aggregation import FINAL_STATUSES
from streams.parts import MAX_MESSAGE_BYTES, split_parts


async def one_batch(bootstrap: str, prefix: str, items: int, groups: int, limit_s: float) -> None:
    batch_id = f"bench-{uuid.uuid4().hex[:8]}"
    batch = {
        "batch_id": batch_id,
        "tenant": "acme",
        "items": [
            {
                "namespace": "batchwire",
                "action": "noop",
                "params": {"i": i},
                **({"group": f"g{i % groups}"} if groups else {}),
            }
            for i in range(items)
        ],
    }
    consumer = AIOKafkaConsumer(
        f"{prefix}batchwire.status", bootstrap_servers=bootstrap, auto_offset_reset="latest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=MAX_MESSAGE_BYTES)
    await consumer.start()
    await producer.start()
    try:
        await asyncio.sleep(1)  # let the consumer take its partitions before submitting
        started = time.monotonic()
        for part in split_parts(batch):
            await producer.send_and_wait(
                f"{prefix}batchwire.batches", json.dumps(part).encode(), key=b"acme"
            )
        while time.monotonic() - started < limit_s:
            fetched = await consumer.getmany(timeout_ms=500)
            for records in fetched.values():
                for record in records:
                    status = codec.decode_as("BatchStatus", record.value)
                    if status["batch_id"] == batch_id and status["status"] in FINAL_STATUSES:
                        seconds = time.monotonic() - started
                        print(
                            f"{items} items, {groups} groups: {seconds:.1f} s, "
                            f"{items / seconds:.0f} items/s, {status['status']}"
                        )
                        return
        print(f"{batch_id} did not end within {limit_s:.0f} s")
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=0)
    parser.add_argument("--limit-s", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(one_batch(args.bootstrap, args.prefix, args.items, args.groups, args.limit_s))


if __name__ == "__main__":
    main()
