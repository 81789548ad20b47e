"""The Faust application: only the `faust.App(...)` call and what it is built from.

Topics live in `streams.topics`, tables in `streams.tables`, one module per agent in
`streams.agents`, the HTTP API in `streams.api`.  The app id carries the topic prefix so
that two deployments (or two tests) that share a broker never share consumer groups or
changelog topics.
"""

from __future__ import annotations

import faust

from streams.codec import register_codecs
from streams.fair_fetch import POLL_RECORDS
from streams.handlers import import_handler_modules
from streams.http_limits import server_options
from streams.parts import MAX_MESSAGE_BYTES
from streams.settings import Settings

settings = Settings.from_env()
register_codecs()

app = faust.App(
    f"{settings.topic_prefix}batchwire",
    broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
    store="rocksdb://",
    datadir=str(settings.data_dir),
    web_host="127.0.0.1",
    web_bind="127.0.0.1",
    web_port=settings.web_port,
    canonical_url=f"http://127.0.0.1:{settings.web_port}",
    topic_partitions=8,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    producer_max_request_size=MAX_MESSAGE_BYTES,
    # per partition and fetch; a bigger message still comes whole (Kafka returns at least one
    # record batch). 16 MiB let faust's consumer buffer many ~1 MB parts at once: the peak
    # RSS of a 100,000-item batch was 183 MiB with it, 162 MiB with 256 KiB.
    consumer_max_fetch_size=256 * 1024,
    # faust hands a whole poll to its agents before polling again; small polls, taken from
    # the partitions in turn (`streams.fair_fetch`, installed by the worker), keep another
    # tenant's submission from waiting behind a big batch's buffered results
    broker_max_poll_records=POLL_RECORDS,
    producer_linger_ms=0,
    # a bundle's results (`streams.result_bundles`) go out as record batches
    # (`streams.publish.RecordBatches`), each waiting for the one before it on its partition
    # to be sent: at faust's 16 KiB a bundle of 500 no-op results took eight. 1 MiB raised
    # the peak RSS of a 1,000,000-item batch to 123.8 MiB, against 116.2 at 256 KiB.
    producer_max_batch_size=256 * 1024,
    table_standby_replicas=0,
    web_enabled=True,
    web_application_options=server_options(),
    autodiscover=False,
    origin="streams",
)


def load_modules() -> None:
    """Import every module that registers agents, views and handlers on `app`."""
    import importlib

    modules = (
        "streams.topics",
        "streams.tables",
        "streams.agents",
        "streams.api",
        "streams.builtin_handlers",
    )
    for module in modules:
        importlib.import_module(module)
    import_handler_modules(settings.handler_modules)
