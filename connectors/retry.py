"""When to try a callback again, and where a waiting retry waits.

A waiting retry never blocks the consumer: it is re-published to a retry topic of its delay
tier (one topic per distinct delay of the schedule).  Within one tier every message waits
the same time, so the topic is ordered by due time: the connector pauses a tier's partition
until its head is due instead of sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.delivery import Verdict

#: answers of these kinds are tried at most this many times, whatever the schedule says
LIMITED_ATTEMPTS = 3


@dataclass(frozen=True)
class RetryPolicy:
    """`schedule[n]` is the delay before attempt n+1 (the first is normally 0)."""

    schedule: tuple[float, ...]
    jitter: float = 0.1

    @property
    def tiers(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.schedule[1:])))

    def next_delay(
        self, attempts_made: int, verdict: Verdict, retry_after_s: float | None
    ) -> float | None:
        """Seconds before the next attempt, or None when the callback is to be given up."""
        if verdict is Verdict.RETRY_LIMITED and attempts_made >= LIMITED_ATTEMPTS:
            return None
        if attempts_made >= len(self.schedule):
            return None
        delay = self.schedule[attempts_made]
        if retry_after_s is not None:
            delay = max(delay, self.capped(retry_after_s))
        return delay

    def capped(self, retry_after_s: float) -> float:
        """A `Retry-After` up to the schedule's longest delay: a receiver asking for years
        (or for a date far ahead) would otherwise park the head of the longest tier's
        partition, and every retry behind it, for that long."""
        return min(retry_after_s, max(self.schedule))

    def tier_for(self, delay: float) -> float:
        """The smallest tier that waits at least `delay` (the largest when none does)."""
        for tier in self.tiers:
            if tier >= delay:
                return tier
        return self.tiers[-1]

    def jittered(self, delay: float, retry_after_s: float | None = None) -> float:
        """`delay` ± the jitter, never under the (capped) `Retry-After`: a minimum."""
        wait = delay * random.uniform(1 - self.jitter, 1 + self.jitter)
        return wait if retry_after_s is None else max(wait, self.capped(retry_after_s))


def tier_topic(prefix: str, tier: float) -> str:
    label = f"{tier:g}".replace(".", "_")
    return f"{prefix}batchwire.callbacks.retry.{label}s"
