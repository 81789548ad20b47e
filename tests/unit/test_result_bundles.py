"""Result bundles (streams.result_bundles) and their ledger events (streams.bundled_results)."""

from __future__ import annotations

import asyncio

import pytest

from streams import codec, result_bundles
from streams.bundled_results import (
    LEGACY_MAGIC,
    RESULTS_MAGIC,
    Bundle,
    BundledResult,
    bundled,
    is_results_bundle,
    pack_results,
    unpack_results,
)
from streams.messages import item_result
from streams.result_bundles import ResultBundler, split_bundles


def entry(raw: bytes, index: int = 0) -> BundledResult:
    return BundledResult(index, 0, "succeeded", raw)


class Sent:
    """A `send` that records each bundle and which results were marked sent before it."""

    def __init__(self) -> None:
        self.bundles: list[tuple[str, list[bytes]]] = []
        self.marked: list[bytes] = []

    async def __call__(self, tenant: str, batch_id: str, results: list[BundledResult]) -> None:
        raws = [result.raw for result in results]
        assert not set(raws) & set(self.marked), "a result was marked sent before its bundle"
        self.bundles.append((batch_id, raws))

    def mark(self, raw: bytes):  # type: ignore[no-untyped-def]
        return lambda: self.marked.append(raw)


def test_packed_results_come_back_whole_and_in_order() -> None:
    results = [
        BundledResult(0, 0, "succeeded", b""),
        BundledResult(7, 2, "failed", b"x"),
        BundledResult(2**40, 1, "timed_out", bytes(range(256)) * 3),
        BundledResult(3, 0, "skipped", RESULTS_MAGIC),
    ]
    data = pack_results("ténant", "b-1", results)
    assert data.startswith(RESULTS_MAGIC) and is_results_bundle(data)
    assert unpack_results(data) == Bundle("ténant", "b-1", results)
    assert unpack_results(pack_results("t", "b", [])) is None


@pytest.mark.parametrize("cut", [1, 3, 5, 9, 40])
def test_a_cut_short_results_event_is_an_error_not_a_partial_bundle(cut: int) -> None:
    data = pack_results("t", "b", [entry(b"abcdef"), entry(b"ghi", 1)])
    with pytest.raises(ValueError):
        unpack_results(data[:-cut])


def item_results(batch_id: str, statuses: list[str]) -> list[dict[str, object]]:
    req = {
        "batch_id": batch_id,
        "tenant": "acme",
        "item_id": "i",
        "index": 0,
        "request": {"id": "i", "namespace": "a", "action": "b", "stage": 2},
    }
    return [
        item_result({**req, "item_id": f"i{n}", "index": n}, status=status)
        for n, status in enumerate(statuses)
    ]


def test_a_bundle_written_before_results_carried_their_status_reads_the_same() -> None:
    """`LEGACY_MAGIC` bundles held each result's bytes only: they are decoded to learn the
    index, stage and status; an unreadable one or one of another batch is skipped."""
    results = item_results("b-1", ["succeeded", "failed", "skipped"])
    raws = [codec.encode("ItemResult", r) for r in results]
    other = codec.encode("ItemResult", item_results("b-2", ["succeeded"])[0])

    def legacy(raws: list[bytes]) -> bytes:
        return LEGACY_MAGIC + b"".join(len(r).to_bytes(4, "big") + r for r in raws)

    expected = [bundled(r, raw) for r, raw in zip(results, raws, strict=True)]
    assert [(e.index, e.stage, e.status) for e in expected] == [
        (0, 2, "succeeded"),
        (1, 2, "failed"),
        (2, 2, "skipped"),
    ]
    data = legacy([raws[0], b"not avro", raws[1], other, raws[2]])
    assert is_results_bundle(data)
    assert unpack_results(data) == Bundle("acme", "b-1", expected)
    assert unpack_results(data) == unpack_results(pack_results("acme", "b-1", expected))
    assert unpack_results(legacy([])) is None
    with pytest.raises(ValueError):
        unpack_results(legacy(raws)[:-3])


async def test_results_are_bundled_per_batch_and_marked_only_once_sent() -> None:
    sent = Sent()
    bundler = ResultBundler(sent)
    for n in range(3):
        for tenant, batch in (("t1", "b1"), ("t1", "b2"), ("t2", "b1")):
            raw = f"{tenant}/{batch}/{n}".encode()
            await bundler.add(tenant, batch, entry(raw), sent.mark(raw))
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
        await bundler.add("t", "b", entry(bytes([n])), sent.mark(bytes([n])))
        assert len(sent.bundles) == (n + 1) // 4  # sent by the add that filled it
    one = [bytes([n]) for n in range(10)]
    assert [r for _, r in sent.bundles] == [one[0:4], one[4:8]]
    assert len(bundler) == 2 and len(sent.marked) == 8


async def test_a_bundle_never_grows_past_its_byte_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_bundles, "MAX_BYTES", 10)
    sent = Sent()
    bundler = ResultBundler(sent)
    for raw in (b"aaaa", b"bbbb", b"cccc", b"d" * 25, b"e"):
        await bundler.add("t", "b", entry(raw), sent.mark(raw))
    await bundler.flush()
    assert [r for _, r in sent.bundles] == [[b"aaaa", b"bbbb"], [b"cccc"], [b"d" * 25], [b"e"]]


def test_split_bundles_keeps_order_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_bundles, "MAX_RESULTS", 3)
    monkeypatch.setattr(result_bundles, "MAX_BYTES", 8)
    raws = [b"a", b"b", b"c", b"d", b"eeeeeee", b"ffffffffff", b"g"]
    bundles = [[r.raw for r in bundle] for bundle in split_bundles(map(entry, raws))]
    assert bundles == [[b"a", b"b", b"c"], [b"d", b"eeeeeee"], [b"ffffffffff"], [b"g"]]
    assert list(split_bundles([])) == []


async def test_results_added_while_a_bundle_is_being_sent_are_all_sent_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sending waits for the producer; the jobs that add meanwhile must not lose results."""
    monkeypatch.setattr(result_bundles, "MAX_RESULTS", 5)
    monkeypatch.setattr(result_bundles, "MAX_BYTES", 12)
    sent = Sent()

    async def slow_send(tenant: str, batch_id: str, results: list[BundledResult]) -> None:
        await asyncio.sleep(0.001)  # as a send that waits for the partition's batch to go
        await sent(tenant, batch_id, results)

    bundler = ResultBundler(slow_send)
    raws = [f"r{n:03d}".encode() for n in range(200)]  # 4 bytes: 3 fill a bundle by size
    await asyncio.gather(*(bundler.add("t", "b", entry(raw), sent.mark(raw)) for raw in raws))
    await bundler.flush()
    got = [r for _, bundle in sent.bundles for r in bundle]
    assert sorted(got) == raws  # each once
    assert sorted(sent.marked) == raws
    assert len(bundler) == 0
