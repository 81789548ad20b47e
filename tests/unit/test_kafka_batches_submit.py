"""`KafkaBatches.submit` when Kafka refuses a part half-way (streams.client).

The producer is a stand-in that refuses the third send: the point is what the client tells
its caller, which a real broker is hard to make happen on cue.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from streams.client import KafkaBatches, PartlySubmitted


class RefusesThirdSend:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send_and_wait(self, topic: str, value: bytes, **kwargs: Any) -> None:
        if len(self.sent) == 2:
            raise KafkaTimeoutError()
        self.sent.append(value)


async def test_a_part_refused_half_way_names_the_batch_to_submit_again() -> None:
    batches = KafkaBatches("127.0.0.1:9")
    producer = RefusesThirdSend()
    batches._producer = producer  # type: ignore[assignment]
    items = [{"namespace": "a", "action": "b", "params": {"pad": "x" * 2000}}] * 1200
    with pytest.raises(PartlySubmitted) as refused:
        await batches.submit({"batch_id": "half", "tenant": "acme", "items": items})
    assert (refused.value.batch_id, refused.value.sent, refused.value.parts) == ("half", 2, 3)
    assert "submit it again with batch_id half" in str(refused.value)
    assert len(producer.sent) == 2
