"""At most one record per aiokafka message a while: a broker outage must not flood the log.

While the broker is down, aiokafka's clients log every failure: in the soak's broker
scenario (three 30 s outages) the worker logged ~3,200 errors a second ("Unable connect to
node ...", "Unable to update metadata from ..."), 60 MB of log for 90 s of outage, before
`streams.reconnect_backoff` paced their reconnections (now ~15 a second).  `install` lets
one record of each message through every `INTERVAL_S` seconds and says how many like it
were left out.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

#: seconds between two records of the same message (logger and format string)
INTERVAL_S = 10.0
#: messages remembered at most; past it the memory starts again (a message whose format
#: string is built per call, not a template, would otherwise grow it without end)
MAX_MESSAGES = 1000


class RepeatLimit(logging.Filter):
    """Pass one record per logger and format string every `interval_s` seconds."""

    def __init__(
        self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        #: (logger, format string) -> (when one was last let through, left out since)
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self.seen[key] = (last[0], last[1] + 1)
            return False
        if len(self.seen) >= MAX_MESSAGES:
            self.seen.clear()
        self.seen[key] = (now, 0)
        if last is not None and last[1]:
            # appended to the message itself, so that every handler and format shows it
            record.msg = f"{record.msg} [{last[1]} more like this in {now - last[0]:.0f} s]"
        return True


@functools.cache  # once per process
def install() -> RepeatLimit:
    """Put one `RepeatLimit` on every logger of aiokafka's (idempotent)."""
    # every module of aiokafka's that logs, imported, so that its logger exists
    import aiokafka.consumer.consumer
    import aiokafka.producer.producer  # noqa: F401

    limit = RepeatLimit()
    for name in list(logging.Logger.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logging.getLogger(name).addFilter(limit)
    return limit
