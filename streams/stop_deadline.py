"""A worker told to stop ends within its stop timeout, whether Kafka answers or not.

Faust's orderly stop commits offsets and flushes the producer. While the broker is
unreachable both wait for it: a worker sent SIGTERM (or Ctrl-C) with its broker down sat
in "Wait for streams..." for minutes (faust's producer gives up after 20), and mode's
worker ignores a second signal. Ending the process at the deadline is what a `kill -9`
does, and that loses nothing: events whose offsets were not committed are redelivered
to whichever worker takes their partitions, and counted once (`streams.agents.aggregate`).
The worker's item processes (`--processes`) end with it: they would otherwise wait out a
stop timeout of their own for the same unreachable Kafka.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

log = logging.getLogger(__name__)

#: the exit status of a worker that did not stop in time, or was told twice
EXIT_STATUS = 1

_armed = threading.Lock()
#: child processes killed when this process ends here (the worker's item processes)
_children: set[int] = set()


def end_with_me(pid: int) -> None:
    """Kill the child process `pid` when this process ends without its orderly stop."""
    _children.add(pid)


def let_go(pid: int) -> None:
    """`pid` has ended (or is waited for elsewhere): no longer killed at the end."""
    _children.discard(pid)


def arm(timeout_s: float, why: str) -> None:
    """End the process `timeout_s` from now unless it has ended by then (once per process:
    later calls keep the first deadline). The timer is a daemon thread: it neither delays
    a normal exit nor depends on the event loop, which a stop may leave waiting."""
    if not _armed.acquire(blocking=False):
        return
    timer = threading.Timer(timeout_s, end_now, (f"{why}: not stopped within {timeout_s:g} s",))
    timer.daemon = True
    timer.start()


def told_again(received: signal.Signals) -> None:
    """A second SIGTERM or Ctrl-C while stopping: end now (`end_now`)."""
    end_now(f"{received.name} received again while stopping")


def end_now(why: str) -> None:
    """Log why and end the process at once, without the orderly stop."""
    log.critical(
        "%s; ending without the orderly stop (is Kafka reachable?): what was not committed "
        "is redelivered and counted once",
        why,
    )
    for pid in list(_children):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_STATUS)
