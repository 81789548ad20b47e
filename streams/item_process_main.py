"""One item-processor process of a worker run with `--processes N` (`streams.item_processes`).

    python -m streams.item_process_main '<the worker's options as JSON>' <log level> <cluster id>

It runs `ItemProcessor` with a Kafka producer of its own and no Faust worker. Twice a second
it writes its item metrics, its consumer lag and whether its consumer has joined the group
to stdout as one JSON line, for the worker's `/metrics` and `/healthz`. It stops on SIGTERM
or SIGINT, and when the worker is gone (its stdin ends, or its stdout is closed); a fault
(a failed send, a processor error) ends it with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.agents.process import ItemProcessor

log = logging.getLogger(__name__)

#: seconds between two reports (the first one too: the worker is ready once every process
#: has reported that its consumer joined the group)
REPORT_INTERVAL_S = 0.5


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=argv[2],
        stream=sys.stderr,
        format="[%(asctime)s] [item process %(process)d] [%(levelname)s] %(name)s: %(message)s",
    )
    from streams import heap
    from streams.options import WorkerOptions
    from streams.worker import prepare_process

    prepare_process(WorkerOptions(**json.loads(argv[1])))
    heap.freeze_startup_objects()
    return asyncio.run(_serve(argv[3]))


async def _serve(cluster_id: str) -> int:
    """Process items until stopped; `cluster_id`: the worker's Kafka cluster (its offsets'
    and tables'), which this process ends on leaving (`streams.cluster_watch`)."""
    from streams import cluster_watch, publish, stop_deadline
    from streams.agents.process import ItemProcessor, controls
    from streams.app import app, settings
    from streams.options import options
    from streams.topics import controls as controls_topic

    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[int] = loop.create_future()

    def stop(status: int) -> None:
        if not stopped.done():
            stopped.set_result(status)

    def on_signal(received: signal.Signals) -> None:
        if stopped.done():  # told twice
            stop_deadline.told_again(received)
        stop(0)

    async def fault(exc: BaseException) -> None:
        stop(1)

    publish.on_fault(fault)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    if cluster_id:
        cluster_watch.expect(cluster_id)
    # kept until the end: stopping waits on Kafka, which a gone cluster never answers
    watcher = asyncio.ensure_future(cluster_watch.exit_on_problem())
    await app.producer.start()
    processor = ItemProcessor(settings.kafka_bootstrap, f"{app.conf.id}-process")
    tasks: dict[asyncio.Future[Any], str] = {
        asyncio.ensure_future(processor.run()): "processing items",
        asyncio.ensure_future(
            controls.follow(settings.kafka_bootstrap, controls_topic.get_topic_name())
        ): "following batch controls",
        # these two end when the worker is gone
        asyncio.ensure_future(_report(processor)): "",
        asyncio.ensure_future(_until_stdin_ends()): "",
    }
    try:
        await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if stopped.done():
            return stopped.result()
        task = next(task for task in tasks if task.done())
        exc = None if task.cancelled() else task.exception()
        if exc is None and not tasks[task]:
            log.info("the worker is gone; stopping")
            return 0
        log.critical("%s ended: %r", tasks[task] or "watching the worker", exc, exc_info=exc)
        return 1
    finally:
        stop_deadline.arm(options.stop_timeout_s, "the item process was told to stop")
        for task in tasks:
            task.cancel()  # the processor finishes its running items and commits
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.producer.stop()
        watcher.cancel()


async def _report(processor: ItemProcessor) -> None:
    """Report until the worker stops reading (its end of the pipe is closed)."""
    from aiokafka.errors import KafkaError

    from streams.metrics import metrics

    while True:
        await asyncio.sleep(REPORT_INTERVAL_S)
        lag: dict[str, int] = {}
        with contextlib.suppress(KafkaError):  # revoked partitions: `topic_lag` skips them
            lag = await processor.lag()
        report = {**metrics.item_report(), "lag": lag, "joined": processor.joined}
        try:
            sys.stdout.write(json.dumps(report) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            return


async def _until_stdin_ends() -> None:
    """Wait until the worker's end of the stdin pipe is closed (the worker has exited)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
