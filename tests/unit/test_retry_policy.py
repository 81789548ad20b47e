"""When the webhook connector tries a callback again (connectors.retry)."""

from __future__ import annotations

import pytest

from connectors.delivery import Verdict
from connectors.retry import LIMITED_ATTEMPTS, RetryPolicy

POLICY = RetryPolicy((0, 5, 300, 1800))


def test_the_schedule_gives_each_delay_then_gives_up() -> None:
    delays = [POLICY.next_delay(n, Verdict.RETRY, None) for n in range(1, 5)]
    assert delays == [5, 300, 1800, None]
    assert POLICY.next_delay(LIMITED_ATTEMPTS, Verdict.RETRY_LIMITED, None) is None


def test_retry_after_is_a_minimum_up_to_the_longest_delay() -> None:
    assert POLICY.next_delay(1, Verdict.RETRY, 60) == 60
    assert POLICY.next_delay(1, Verdict.RETRY, 1) == 5
    # a receiver asking for a year waits the longest delay, in the longest tier
    assert POLICY.next_delay(1, Verdict.RETRY, 365 * 86400.0) == 1800
    assert POLICY.tier_for(1800) == 1800


@pytest.mark.parametrize("retry_after", [60.0, 1e308])
def test_the_jitter_never_goes_under_retry_after(retry_after: float) -> None:
    delay = POLICY.next_delay(1, Verdict.RETRY, retry_after)
    assert delay is not None
    waits = [POLICY.jittered(delay, retry_after) for _ in range(200)]
    floor = min(retry_after, 1800)
    assert min(waits) >= floor
    assert max(waits) <= delay * 1.1


def test_without_retry_after_the_jitter_spreads_both_ways() -> None:
    waits = [POLICY.jittered(300) for _ in range(200)]
    assert 270 <= min(waits) < 300 < max(waits) <= 330
