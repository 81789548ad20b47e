"""The exploder's submissions queue is bounded (faust's `app.topic` drops `maxsize`)."""

from __future__ import annotations

from streams.agents.explode import explode
from streams.topics import BATCHES_BUFFER, batches, items


def test_the_exploder_reads_submissions_through_a_bounded_queue() -> None:
    assert explode.channel is batches
    stream_channel = batches.clone(is_iterator=True)  # what the agent's stream reads
    assert stream_channel.queue.maxsize == BATCHES_BUFFER
    assert items.maxsize is None  # other topics keep faust's default
