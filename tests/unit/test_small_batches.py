"""`streams.small_batches`: a batch gets the whole window unless another small batch ran
within the horizon, then the shared one."""

from __future__ import annotations

from streams.small_batches import SmallBatches


def test_without_small_batches_a_batch_gets_the_whole_window() -> None:
    small = SmallBatches(horizon_s=5.0)
    assert small.window("acme/big", alone=500, shared=64, now=0.0) == 500


def test_a_small_batch_does_not_shrink_its_own_window() -> None:
    small = SmallBatches(horizon_s=5.0)
    small.seen("acme/small", 10, 500, now=0.0)
    small.seen("acme/small", 10, 500, now=1.0)
    assert small.window("acme/small", alone=500, shared=64, now=1.0) == 500


def test_beside_a_small_batch_every_other_batch_gets_the_shared_window() -> None:
    small = SmallBatches(horizon_s=5.0)
    small.seen("globex/small", 10, 500, now=0.0)
    small.seen("initech/small", 500, 500, now=1.0)
    assert small.window("acme/big", alone=500, shared=64, now=1.0) == 64
    assert small.window("globex/small", alone=500, shared=64, now=1.0) == 64


def test_big_batches_do_not_shrink_each_other_s_window() -> None:
    small = SmallBatches(horizon_s=5.0)
    small.seen("acme/big", 100_000, 500, now=0.0)
    small.seen("globex/big", 501, 500, now=0.0)
    assert small.window("acme/big", alone=500, shared=64, now=0.0) == 500
    assert small.window("globex/big", alone=500, shared=64, now=0.0) == 500


def test_a_small_batch_counts_until_the_horizon_after_its_last_event() -> None:
    small = SmallBatches(horizon_s=5.0)
    small.seen("globex/small", 10, 500, now=0.0)
    small.seen("globex/small", 10, 500, now=3.0)
    assert small.others("acme/big", now=7.9)
    assert not small.others("acme/big", now=8.0)  # its last event was 5 s ago
    assert small.window("acme/big", alone=500, shared=64, now=8.0) == 500


def test_the_shared_window_is_at_most_the_whole_one() -> None:
    small = SmallBatches(horizon_s=5.0)
    small.seen("globex/small", 10, 500, now=0.0)
    assert small.window("acme/big", alone=50, shared=64, now=0.0) == 50
