"""`streams.fetch_wait`: the consumer a faust worker starts fetches with a 100 ms broker wait."""

from __future__ import annotations

import faust
import pytest

from streams import fetch_wait

pytestmark = pytest.mark.integration


async def test_the_worker_consumer_fetches_with_the_short_wait(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    app = faust.App(f"{topic_prefix}fetchwait", broker=f"kafka://{kafka_bootstrap}")
    thread = app.consumer._thread  # faust's AIOKafkaConsumerThread, as a worker has it
    faust_default = thread._create_worker_consumer(app.transport)
    assert faust_default._fetch_max_wait_ms == 1500, "faust changed its fixed fetch wait"

    fetch_wait.install()
    consumer = thread._create_worker_consumer(app.transport)
    await consumer.start()
    try:
        # what the running fetcher sends to the broker, not only the constructor's field
        assert consumer._fetcher._fetch_max_wait_ms == fetch_wait.FETCH_MAX_WAIT_MS == 100
    finally:
        await consumer.stop()
