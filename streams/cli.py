"""The one command-line entry point: `batchwire kafka up|down|status`, `batchwire worker`, ..."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from streams.aggregation import RELEASE_WINDOW, SHARED_RELEASE_WINDOW
from streams.errors import BatchwireError
from streams.localkafka import DEFAULT_KAFKA_VERSION, LocalBroker
from streams.localkafka.broker import cache_root


@click.group()
def main() -> None:
    """batchwire: an asynchronous batch-API engine on Kafka."""


@main.group()
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the broker's config, data, log and pid.",
)
@click.option(
    "--version",
    "kafka_version",
    default=DEFAULT_KAFKA_VERSION,
    show_default=True,
    help="Apache Kafka version to run.",
)
@click.option("--port", default=9092, show_default=True, help="Broker port; 0 picks a free one.")
@click.pass_context
def kafka(ctx: click.Context, home: Path | None, kafka_version: str, port: int) -> None:
    """A local single-node KRaft broker on 127.0.0.1 (jars from Maven Central)."""
    ctx.obj = LocalBroker(home=home or cache_root() / "broker", version=kafka_version, port=port)


def _fail(exc: BatchwireError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@kafka.command()
@click.option(
    "--keep-data",
    is_flag=True,
    help="Restart on the topics and offsets of the last run (same port) instead of a new cluster.",
)
@click.pass_obj
def up(broker: LocalBroker, keep_data: bool) -> None:
    """Fetch the jars once, format storage, start the broker and wait until it answers."""
    try:
        bootstrap = broker.start(keep_data=keep_data)
    except BatchwireError as exc:
        _fail(exc)
    click.echo(bootstrap)


@kafka.command()
@click.pass_obj
def down(broker: LocalBroker) -> None:
    """Stop the broker started by `up`."""
    click.echo("stopped" if broker.stop() else "not running")


@kafka.command()
@click.pass_obj
def status(broker: LocalBroker) -> None:
    """Say whether the broker runs and answers."""
    click.echo(broker.status())


@main.command()
@click.option("--loglevel", default="info", show_default=True)
@click.option(
    "--web-host", default="127.0.0.1", show_default=True, help="Address the HTTP views listen on."
)
@click.option(
    "--canonical-url",
    default=None,
    help="URL other workers use to reach this one (default http://WEB_HOST:PORT).",
)
@click.option(
    "--concurrency",
    default=64,
    show_default=True,
    help="Items running at once in this worker (groups run concurrently); with --processes, "
    "in each item-processor process.",
)
@click.option(
    "--processes",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Item-processor processes to start: items then run beside the worker's own process "
    "(aggregation, explosion, HTTP), on other cores. 0 runs them in the worker's process.",
)
@click.option(
    "--retry-non-idempotent",
    is_flag=True,
    help="Also retry POST and PATCH items on 429 and 5xx answers.",
)
@click.option(
    "--retention-days",
    default=7.0,
    show_default=True,
    help="Days a finished batch's status and results stay available.",
)
@click.option(
    "--session-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(6.0, 90.0),
    help="Seconds without a heartbeat before Kafka gives a dead worker's partitions to "
    "the others (a worker killed with kill -9 stalls its partitions this long).",
)
@click.option(
    "--stop-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1.0, 600.0),
    help="Seconds a stopping worker (SIGTERM, Ctrl-C, a fault) waits for its orderly stop "
    "(offset commits, producer flush) before it ends without it, as when Kafka is "
    "unreachable; what was not committed is redelivered. A second SIGTERM or Ctrl-C ends "
    "it at once.",
)
@click.option(
    "--release-window",
    default=RELEASE_WINDOW,
    show_default=True,
    type=click.IntRange(min=10),
    help="Items of one batch sent to the processors and still without a result, at most: "
    "smaller lets other tenants' small batches wait less behind a big one, at some throughput.",
)
@click.option(
    "--shared-window",
    default=SHARED_RELEASE_WINDOW,
    show_default=True,
    type=click.IntRange(min=10),
    help="The release window of a batch while small batches (at most --release-window "
    "items) run on this worker: what a small batch waits behind while a big one runs.",
)
def worker(
    loglevel: str,
    web_host: str,
    canonical_url: str | None,
    concurrency: int,
    processes: int,
    retry_non_idempotent: bool,
    retention_days: float,
    session_timeout: float,
    stop_timeout: float,
    release_window: int,
    shared_window: int,
) -> None:
    """Run a stream worker: exploder, item processors, aggregator and HTTP views."""
    from streams.options import WorkerOptions
    from streams.worker import run_worker

    tunables = WorkerOptions(
        concurrency=concurrency,
        processes=processes,
        retry_non_idempotent=retry_non_idempotent,
        retention_days=retention_days,
        session_timeout_s=session_timeout,
        stop_timeout_s=stop_timeout,
        release_window=release_window,
        shared_window=shared_window,
    )
    try:
        run_worker(
            loglevel=loglevel, web_host=web_host, canonical_url=canonical_url, tunables=tunables
        )
    except BatchwireError as exc:
        _fail(exc)


@main.group(invoke_without_command=True)
@click.option("--https-only", is_flag=True, help="Refuse callback URLs that are not https.")
@click.option("--concurrency", default=100, show_default=True, help="Attempts in flight.")
@click.option(
    "--per-endpoint", default=10, show_default=True, help="Attempts in flight to one endpoint."
)
@click.option("--connect-timeout", default=5.0, show_default=True, help="Seconds to connect.")
@click.option("--total-timeout", default=15.0, show_default=True, help="Seconds per attempt.")
@click.pass_context
def connector(
    ctx: click.Context,
    https_only: bool,
    concurrency: int,
    per_endpoint: int,
    connect_timeout: float,
    total_timeout: float,
) -> None:
    """Run the webhook connector: deliver `batchwire.callbacks` (signed, retried)."""
    if ctx.invoked_subcommand is not None:
        return
    from connectors.webhook import ConnectorOptions, run_connector
    from streams.settings import Settings

    options = ConnectorOptions(
        https_only=https_only,
        concurrency=concurrency,
        per_endpoint=per_endpoint,
        connect_timeout_s=connect_timeout,
        total_timeout_s=total_timeout,
    )
    try:
        run_connector(Settings.from_env(), options)
    except BatchwireError as exc:
        _fail(exc)


@connector.command()
@click.option("--batch-id", default=None, help="Only this batch's dead letters.")
def replay(batch_id: str | None) -> None:
    """Re-publish dead-lettered callbacks (same webhook-id) and re-enable their endpoints."""
    from connectors.replay import replay as replay_dead_letters
    from streams.settings import Settings

    click.echo(f"replayed {replay_dead_letters(Settings.from_env(), batch_id)} callbacks")


def _api_options(command: Any) -> Any:
    command = click.option(
        "--url",
        envvar="BATCHWIRE_API_URL",
        default="http://127.0.0.1:6066",
        show_default=True,
        help="A worker's HTTP API (any worker answers any batch).",
    )(command)
    return click.option(
        "--key", envvar="BATCHWIRE_API_KEY", default="", help="The tenant's bearer key."
    )(command)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="The tenant the batch belongs to.")
@click.option("--batch-id", default=None, help="Idempotency key (else generated).")
@click.option(
    "--kafka",
    default=None,
    metavar="BOOTSTRAP",
    help="Publish straight to batchwire.batches on this Kafka instead of HTTP.",
)
@click.option("--topic-prefix", envvar="BATCHWIRE_TOPIC_PREFIX", default="")
@_api_options
def submit(
    file: Path,
    tenant: str,
    batch_id: str | None,
    kafka: str | None,
    topic_prefix: str,
    url: str,
    key: str,
) -> None:
    """Submit a batch: FILE is JSON (a batch object or a list of items) or NDJSON (.ndjson or
    .jsonl, one item per line, streamed)."""
    from streams.cli_client import run, submit_file

    coroutine = submit_file(
        file, url=url, key=key, tenant=tenant, batch_id=batch_id, kafka=kafka, prefix=topic_prefix
    )
    click.echo(run(coroutine, url))


def _lookup_options(command: Any) -> Any:
    """The API's options and `--tenant` for commands that name a batch by its id."""
    return _api_options(
        click.option(
            "--tenant",
            default=None,
            help="The batch's tenant, when the key holds several that may share the batch id.",
        )(command)
    )


@main.command("status")
@click.argument("batch_id")
@click.option("--watch", is_flag=True, help="A live progress bar until the batch ends.")
@_lookup_options
def batch_status(batch_id: str, watch: bool, tenant: str | None, url: str, key: str) -> None:
    """Show a batch's status (counters, item errors)."""
    import json
    import sys

    from streams.cli_client import run, watch_status

    watching = watch_status(batch_id, url=url, key=key, tenant=tenant, watch=watch, out=sys.stdout)
    status = run(watching, url)
    if not watch:
        click.echo(json.dumps(status, indent=2, ensure_ascii=False))
    elif status["item_errors"]:
        click.echo(f"item errors: {json.dumps(status['item_errors'], ensure_ascii=False)}")


@main.command()
@click.argument("batch_id")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--status", default=None, help="Only results with this status.")
@click.option("-o", "--output", type=click.File("w"), default="-", help="File (default stdout).")
@_lookup_options
def results(
    batch_id: str,
    fmt: str,
    status: str | None,
    output: Any,
    tenant: str | None,
    url: str,
    key: str,
) -> None:
    """Write a batch's results in submission order, as JSON lines or CSV."""
    from streams.cli_client import run, write_results

    writing = write_results(
        batch_id, url=url, key=key, tenant=tenant, fmt=fmt, status=status, out=output
    )
    count = run(writing, url)
    click.echo(f"{count} results", err=True)


@main.command()
@click.argument("batch_id")
@_lookup_options
def cancel(batch_id: str, tenant: str | None, url: str, key: str) -> None:
    """Cancel a batch: its items not yet started become `cancelled`. Prints its status."""
    import json

    from streams.cli_client import cancel_batch, run

    status = run(cancel_batch(batch_id, url=url, key=key, tenant=tenant), url)
    click.echo(json.dumps(status, indent=2, ensure_ascii=False))


@main.command()
@click.option("--exit-when-done", is_flag=True, help="Stop everything once the batches end.")
def demo(exit_when_done: bool) -> None:
    """Start a local broker and a worker, submit sample batches and show their progress."""
    from streams.demo import run_demo

    try:
        run_demo(exit_when_done=exit_when_done)
    except BatchwireError as exc:
        _fail(exc)


if __name__ == "__main__":
    main()
