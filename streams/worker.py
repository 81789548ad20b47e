"""Start a Faust worker for `streams.app` from code (no faust CLI argument parsing)."""

from __future__ import annotations

import signal
import socket

import faust

from streams import stop_deadline
from streams.errors import InUse
from streams.options import WorkerOptions, options


class Worker(faust.Worker):
    """Faust's worker, with a deadline on its stop (`streams.stop_deadline`): it ends within
    `options.stop_timeout_s` of being told to stop (a signal, or a crash), and at once on a
    second SIGTERM or Ctrl-C."""

    def _schedule_shutdown(self, received: signal.Signals) -> None:  # mode's, every signal
        if self._signal_stop_time:  # mode ignores a second one
            stop_deadline.told_again(received)
        super()._schedule_shutdown(received)

    async def stop(self) -> None:
        stop_deadline.arm(options.stop_timeout_s, "the worker was told to stop")
        await super().stop()


def prepare_process(tunables: WorkerOptions | None) -> None:
    """What a worker and each of its item processes (`streams.item_process_main`) do first:
    the tunables, glibc's mmap threshold (`streams.heap`), the app's modules and handlers,
    aiokafka's partitions taken in turn, its reconnections and its metadata updates for
    missing topics paced, and its log limited."""
    from streams import cluster_watch, fair_fetch, heap, log_limits, reconnect_backoff
    from streams.app import load_modules

    heap.fix_mmap_threshold()
    if tunables is not None:  # the one shared instance the agents read
        for name, value in vars(tunables).items():
            setattr(options, name, value)
    load_modules()
    fair_fetch.install()
    log_limits.install()
    reconnect_backoff.install()
    cluster_watch.install()


def run_worker(
    *,
    loglevel: str = "info",
    web_host: str = "127.0.0.1",
    canonical_url: str | None = None,
    tunables: WorkerOptions | None = None,
) -> None:
    import asyncio

    from yarl import URL

    from streams import cluster_watch, data_dir, fetch_wait, heap, paused_fetch
    from streams.api.protocol import install_parse_error_answers
    from streams.app import app, settings
    from streams.topics import declare_topics

    prepare_process(tunables)
    check_port_free(web_host, settings.web_port)  # before Kafka: faust binds it last
    data_dir.lock(settings.data_dir)
    fetch_wait.install()
    paused_fetch.install()
    started_on = asyncio.run(declare_topics(settings.kafka_bootstrap))
    data_dir.claim(settings.data_dir, started_on)
    cluster_watch.expect(started_on)
    app.conf.web_host = web_host
    app.conf.web_bind = web_host
    app.conf.canonical_url = URL(canonical_url or f"http://{web_host}:{settings.web_port}")
    app.conf.broker_session_timeout = options.session_timeout_s
    install_parse_error_answers(app.web.web_app)  # type: ignore[attr-defined]  # aiohttp's driver
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG (its handler spins on every
    # record), so every debug call in aiokafka and faust built a record (9.9% of a py-spy
    # profile of 10-item batches run one at a time). Without it the root logger keeps
    # `loglevel`.
    worker.spinner = None
    heap.freeze_startup_objects()
    worker.execute_from_commandline()


def check_port_free(host: str, port: int) -> None:
    """`InUse` when another process listens on the worker's web port. Faust binds it only
    once the worker has started everything else (joined its groups too), and then fails
    with a traceback."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise InUse(
                f"the web port {host}:{port} (BATCHWIRE_WEB_PORT) is in use ({exc.strerror}): "
                "each worker needs its own"
            ) from None
