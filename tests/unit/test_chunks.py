"""`take_chunks` on a faust stream fed by hand (no broker: the events are put on the
stream's channel as faust's conductor would put a topic's messages)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import faust
from faust.types import EventT, Message

from streams.chunks import take_chunks


def _stream() -> tuple[faust.App, faust.ChannelT[bytes], faust.Stream[bytes]]:
    app = faust.App("test-chunks", broker="kafka://127.0.0.1:1", store="memory://")
    app.flow_control.resume()  # a worker resumes it once its partitions are assigned
    channel: faust.ChannelT[bytes] = app.channel()
    return app, channel, channel.stream()


def _event(app: faust.App, stream: faust.Stream[bytes], offset: int) -> EventT[bytes]:
    value = str(offset).encode()
    message = Message(
        topic="t", partition=0, key=None, value=value, offset=offset, timestamp=0.0,
        timestamp_type=0, headers=[], checksum=None,
    )  # fmt: skip
    message.generation_id = app.consumer_generation_id
    return stream.channel._create_event(None, value, [], message)  # type: ignore[attr-defined]


async def test_chunks_close_when_full_or_when_nothing_waits_and_ack_after_handling() -> None:
    app, channel, stream = _stream()
    handled: list[bytes] = []
    acked: list[bytes] = []

    async def ack(event: EventT[bytes]) -> bool:
        assert event.value in handled, "acked before its chunk was handled"
        acked.append(event.value)
        return True

    stream.ack = ack  # type: ignore[method-assign]
    for offset in range(7):
        await channel.put(_event(app, stream, offset))

    async def later() -> None:
        await asyncio.sleep(0.05)
        await channel.put(_event(app, stream, 7))

    late = asyncio.ensure_future(later())
    chunks: list[list[bytes]] = []

    async def take() -> None:
        async with aclosing(take_chunks(stream, 3)) as taken:
            async for chunk in taken:
                values = [event.value for event in chunk]
                chunks.append(values)
                if values == [b"7"]:
                    break  # as the aggregator leaves its loop on a fault, mid-chunk
                await asyncio.sleep(0.01)  # handling takes time: nothing is added meanwhile
                handled.extend(values)

    await asyncio.wait_for(take(), 10)
    await late
    # full, full, then the queue ran dry (no timer to wait for), then the late one alone
    assert chunks == [[b"0", b"1", b"2"], [b"3", b"4", b"5"], [b"6"], [b"7"]]
    # every handled chunk acked, in order; the one left unfinished not at all
    assert acked == [str(n).encode() for n in range(7)]
