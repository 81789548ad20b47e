"""Item results bundled per batch on their way to the aggregator.

A bundle holds the `ItemResult`s of one batch that finished close together. Sending it puts
each result on `batchwire.results` (the contract's topic, for downstream consumers) as one
Kafka record batch, then the bundle as one ledger event for the aggregator
(`streams.bundled_results`). Faust hands its agents one message at a time, which was
most of the aggregator's cost per item and, for a small batch, ~1 ms per result of latency;
a bundle is one hand-off, one state read and one state write.

A processor sends its open bundles when nothing else is running in it (a small batch's last
item: no wait), every `WITHIN_S` while it is busy, and a bundle at once when it is full. An
item counts as finished (its offset may be committed) only once its bundle is with the
producer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from streams.bundled_results import BundledResult, pack_results
from streams.publish import publish, publish_batch
from streams.topics import ledger, results

#: a busy processor sends its bundles this often
WITHIN_S = 0.01
MAX_RESULTS = 500
#: encoded results per bundle, at most (one bigger result travels alone)
MAX_BYTES = 1024 * 1024

SendBundle = Callable[[str, str, list[BundledResult]], Awaitable[object]]


@dataclass
class _Bundle:
    results: list[BundledResult] = field(default_factory=list)
    size: int = 0
    on_sent: list[Callable[[], None]] = field(default_factory=list)


class ResultBundler:
    """Open bundles of one processor, by (tenant, batch_id). `send(tenant, batch_id,
    results)` hands one bundle to the producer."""

    def __init__(self, send: SendBundle) -> None:
        self._send = send
        self._open: dict[tuple[str, str], _Bundle] = {}

    def __len__(self) -> int:
        """Results waiting in open bundles."""
        return sum(len(b.results) for b in self._open.values())

    async def add(
        self, tenant: str, batch_id: str, result: BundledResult, on_sent: Callable[[], None]
    ) -> None:
        """Put a result in its batch's bundle; `on_sent` runs once the bundle is with the
        producer. Sends the bundle first when `result` would overfill it."""
        # Every change to the open bundles happens before the first await: other jobs add
        # while a send waits for the producer, and a bundle put back after that wait would
        # replace (and lose) the one they started meanwhile.
        key = (tenant, batch_id)
        ready: list[_Bundle] = []
        bundle = self._open.get(key)
        if bundle is not None and not _takes(len(bundle.results), bundle.size, result):
            ready.append(self._open.pop(key))
            bundle = None
        if bundle is None:
            bundle = self._open[key] = _Bundle()
        bundle.results.append(result)
        bundle.size += len(result.raw)
        bundle.on_sent.append(on_sent)
        if len(bundle.results) >= MAX_RESULTS:  # full: no need to wait for the next one
            ready.append(self._open.pop(key))
        for full in ready:
            await self._send_bundle(tenant, batch_id, full)

    async def flush(self) -> None:
        """Send every open bundle."""
        bundles, self._open = self._open, {}
        for (tenant, batch_id), bundle in bundles.items():
            await self._send_bundle(tenant, batch_id, bundle)

    async def _send_bundle(self, tenant: str, batch_id: str, bundle: _Bundle) -> None:
        await self._send(tenant, batch_id, bundle.results)
        for on_sent in bundle.on_sent:
            on_sent()


def _takes(count: int, size: int, result: BundledResult) -> bool:
    """Whether a bundle of `count` results in `size` bytes has room for `result`."""
    return count < MAX_RESULTS and size + len(result.raw) <= MAX_BYTES


async def publish_bundle(tenant: str, batch_id: str, bundle: list[BundledResult]) -> None:
    """Hand one bundle of a batch's results to the producer: each result on
    `batchwire.results`, then the bundle on the ledger for the aggregator."""
    key = batch_id.encode()
    await publish_batch(results, key, [result.raw for result in bundle])
    await publish(ledger, key, pack_results(tenant, batch_id, bundle))


def split_bundles(
    bundled: Iterable[BundledResult],
) -> Iterator[list[BundledResult]]:
    """Results of one batch cut into bundles within `MAX_RESULTS` and `MAX_BYTES`."""
    bundle: list[BundledResult] = []
    size = 0
    for result in bundled:
        if bundle and not _takes(len(bundle), size, result):
            yield bundle
            bundle, size = [], 0
        bundle.append(result)
        size += len(result.raw)
    if bundle:
        yield bundle
