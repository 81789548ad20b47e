"""Worker tunables set by command-line flags (the environment holds only the contract's
settings, see `streams.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.aggregation import RELEASE_WINDOW, SHARED_RELEASE_WINDOW


@dataclass
class WorkerOptions:
    #: items running at once per worker (different groups run concurrently); with
    #: `processes`, per item-processor process
    concurrency: int = 64
    #: item-processor processes the worker starts (`streams.item_processes`); 0 runs the
    #: items in the worker's own process
    processes: int = 0
    #: retry POST and PATCH items on 429/5xx too (off: only idempotent methods are retried)
    retry_non_idempotent: bool = False
    #: days a finished batch's status and results stay available for lookups
    retention_days: float = 7.0
    #: seconds after a deadline before items still without a result are reported timed out
    sweep_grace_s: float = 10.0
    #: seconds after a cancel before items still without a result are reported cancelled.
    #: Items that started finish with their own result (a cancel stops only those not yet
    #: started), so this outlasts an HTTP item's longest run: 4 attempts of up to 5 + 30 s
    #: and the waits between them. It only ends a batch whose items were lost.
    cancel_grace_s: float = 180.0
    #: a batch callback carries its results inline up to this many items, else a URL
    inline_results_max: int = 1000
    #: seconds without a heartbeat before the group gives this worker's partitions away
    #: (faust's default; 6 is the broker's minimum, and faust wants at most its 90 s
    #: request timeout)
    session_timeout_s: float = 60.0
    #: seconds a stopping worker waits for its orderly stop (commits, flushes) before it
    #: ends without it (`streams.stop_deadline`): Kafka unreachable, the stop never ends
    stop_timeout_s: float = 30.0
    #: items of one batch on `batchwire.items` without a result, at most: smaller lets
    #: another tenant's small batch wait less behind a big one, at some throughput
    release_window: int = RELEASE_WINDOW
    #: the release window of a batch while small batches run (`streams.small_batches`)
    shared_window: int = SHARED_RELEASE_WINDOW


options = WorkerOptions()
