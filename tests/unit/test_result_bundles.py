"""Result bundles (streams.result_bundles) and their ledger encoding (streams.messages)."""

from __future__ import annotations

import asyncio

import pytest

from streams import result_bundles
from streams.messages import RESULTS_MAGIC, pack_results, unpack_results
from streams.result_bundles import ResultBundler, split_bundles


class Sent:
    """A `send` that records each bundle and which results were marked sent before it."""

    def __init__(self) -> None:
        self.bundles: list[tuple[str, list[bytes]]] = []
        self.marked: list[bytes] = []

    async def __call__(self, batch_id: str, raws: list[bytes]) -> None:
        assert not set(raws) & set(self.marked), "a result was marked sent before its bundle"
        self.bundles.append((batch_id, list(raws)))

    def mark(self, raw: bytes):  # type: ignore[no-untyped-def]
        return lambda: self.marked.append(raw)


def test_packed_results_come_back_whole_and_in_order() -> None:
    raws = [b"", b"x", bytes(range(256)) * 3, RESULTS_MAGIC]
    data = pack_results(raws)
    assert data.startswith(RESULTS_MAGIC)
    assert unpack_results(data) == raws
    assert unpack_results(pack_results([])) == []


@pytest.mark.parametrize("cut", [1, 3, 5, 9])
def test_a_cut_short_results_event_is_an_error_not_a_partial_bundle(cut: int) -> None:
    data = pack_results([b"abcdef", b"ghi"])
    with pytest.raises(ValueError):
        unpack_results(data[:-cut])


async def test_results_are_bundled_per_batch_and_marked_only_once_sent() -> None:
    sent = Sent()
    bundler = ResultBundler(sent)
    for n in range(3):
        for tenant, batch in (("t1", "b1"), ("t1", "b2"), ("t2", "b1")):
            raw = f"{tenant}/{batch}/{n}".encode()
            await bundler.add(tenant, batch, raw, sent.mark(raw))
    assert sent.bundles == [] and sent.marked == []
    assert len(bundler) == 9
    await bundler.flush()
    assert len(bundler) == 0
    assert [(b, len(r)) for b, r in sent.bundles] == [("b1", 3), ("b2", 3), ("b1", 3)]
    assert sent.bundles[2][1] == [b"t2/b1/0", b"t2/b1/1", b"t2/b1/2"]  # its tenant's, in order
    assert sorted(sent.marked) == sorted(r for _, raws in sent.bundles for r in raws)
    await bundler.flush()
    assert len(sent.bundles) == 3  # nothing twice


async def test_a_full_bundle_goes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_bundles, "MAX_RESULTS", 4)
    sent = Sent()
    bundler = ResultBundler(sent)
    for n in range(10):
        await bundler.add("t", "b", bytes([n]), sent.mark(bytes([n])))
        assert len(sent.bundles) == (n + 1) // 4  # sent by the add that filled it
    one = [bytes([n]) for n in range(10)]
    assert [r for _, r in sent.bundles] == [one[0:4], one[4:8]]
    assert len(bundler) == 2 and len(sent.marked) == 8


async def test_a_bundle_never_grows_past_its_byte_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_bundles, "MAX_BYTES", 10)
    sent = Sent()
    bundler = ResultBundler(sent)
    for raw in (b"aaaa", b"bbbb", b"cccc", b"d" * 25, b"e"):
        await bundler.add("t", "b", raw, sent.mark(raw))
    await bundler.flush()
    assert [r for _, r in sent.bundles] == [[b"aaaa", b"bbbb"], [b"cccc"], [b"d" * 25], [b"e"]]


def test_split_bundles_keeps_order_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_bundles, "MAX_RESULTS", 3)
    monkeypatch.setattr(result_bundles, "MAX_BYTES", 8)
    raws = [b"a", b"b", b"c", b"d", b"eeeeeee", b"ffffffffff", b"g"]
    bundles = list(split_bundles(raws))
    assert bundles == [[b"a", b"b", b"c"], [b"d", b"eeeeeee"], [b"ffffffffff"], [b"g"]]
    assert list(split_bundles([])) == []


async def test_results_added_while_a_bundle_is_being_sent_are_all_sent_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sending waits for the producer; the jobs that add meanwhile must not lose results."""
    monkeypatch.setattr(result_bundles, "MAX_RESULTS", 5)
    monkeypatch.setattr(result_bundles, "MAX_BYTES", 12)
    sent = Sent()

    async def slow_send(batch_id: str, raws: list[bytes]) -> None:
        await asyncio.sleep(0.001)  # as a send that waits for the partition's batch to go
        await sent(batch_id, raws)

    bundler = ResultBundler(slow_send)
    raws = [f"r{n:03d}".encode() for n in range(200)]  # 4 bytes: 3 fill a bundle by size
    await asyncio.gather(*(bundler.add("t", "b", raw, sent.mark(raw)) for raw in raws))
    await bundler.flush()
    got = [r for _, bundle in sent.bundles for r in bundle]
    assert sorted(got) == raws  # each once
    assert sorted(sent.marked) == raws
    assert len(bundler) == 0
