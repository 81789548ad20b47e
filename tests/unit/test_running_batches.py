"""`streams.running_batches`: a batch gets the whole window alone, the shared one beside
another batch that ran within the horizon."""

from __future__ import annotations

from streams.running_batches import RunningBatches


def test_alone_a_batch_gets_the_whole_window() -> None:
    running = RunningBatches(horizon_s=5.0)
    assert running.window("acme/big", alone=500, shared=128, now=0.0) == 500
    running.touch("acme/big", now=0.0)
    running.touch("acme/big", now=1.0)
    assert running.window("acme/big", alone=500, shared=128, now=1.0) == 500


def test_beside_another_batch_every_batch_gets_the_shared_window() -> None:
    running = RunningBatches(horizon_s=5.0)
    running.touch("acme/big", now=0.0)
    running.touch("globex/small", now=1.0)
    assert running.window("acme/big", alone=500, shared=128, now=1.0) == 128
    assert running.window("globex/small", alone=500, shared=128, now=1.0) == 128
    assert running.window("initech/new", alone=500, shared=128, now=1.0) == 128


def test_another_batch_counts_until_the_horizon_after_its_last_event() -> None:
    running = RunningBatches(horizon_s=5.0)
    running.touch("globex/small", now=0.0)
    running.touch("globex/small", now=3.0)
    running.touch("acme/big", now=3.0)
    assert running.others("acme/big", now=7.9)
    running.touch("acme/big", now=7.9)
    assert not running.others("acme/big", now=8.0)  # small's last event was 5 s ago
    assert running.window("acme/big", alone=500, shared=128, now=8.0) == 500


def test_the_shared_window_is_at_most_the_whole_one() -> None:
    running = RunningBatches(horizon_s=5.0)
    running.touch("globex/small", now=0.0)
    assert running.window("acme/big", alone=50, shared=128, now=0.0) == 50
