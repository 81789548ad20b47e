"""The small batches this worker has seen running lately, and the release window of the
others.

A big batch is fed to `batchwire.items` through a window of items without a result
(`aggregation.release_room`). A small batch's items and results queue behind that window
in the topics, the consumers' fetches and the event loop, so its latency grows with the
window. A batch gets the whole `--release-window` (500: the most items/s) unless a small
batch, one whose items all fit in that window, has run here within `HORIZON_S`: then it
gets `--shared-window` (128). While a 100,000-item batch ran, that cut another tenant's
10-item batches from ~150 to ~55-70 ms at p50, at a cost of ~0-16% of the big batch's
items/s (64: ~35-55 ms, at up to a third of them; bench/README.md, the shared window).
Big batches do not shrink each other's windows: their latency is their throughput.

"Here" is this worker's aggregator (its ledger partitions): with several workers, a small
batch aggregated on another worker does not shrink this one's windows. The exploder's head
of a batch (`aggregation.prereleased`) always uses the whole window, so a part exploded
again after a crash goes out with the same head (a different one is mended at a cost, see
`Chunk._send_head_left_out`); only the aggregator's own release uses the shared window.
"""

from __future__ import annotations

import time
from collections import OrderedDict

#: a small batch counts as running this long after its last event, so a tenant that sends
#: small batches one after another keeps the big ones' windows small between its batches
HORIZON_S = 5.0


class SmallBatches:
    """Small batches' keys (`tenant/batch_id`) by the time of their last event, oldest first."""

    def __init__(self, horizon_s: float = HORIZON_S) -> None:
        self.horizon_s = horizon_s
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, key: str, items: int, window: int, now: float | None = None) -> None:
        """Batch `key`, of `items` items so far, had an event now: remember it if it is small
        (its items all fit in `window`, the whole release window)."""
        if items <= window:
            self._seen[key] = time.monotonic() if now is None else now
            self._seen.move_to_end(key)

    def others(self, key: str, now: float | None = None) -> bool:
        """True when a small batch other than `key` ran within the horizon."""
        now = time.monotonic() if now is None else now
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self.horizon_s:
                break
            del self._seen[oldest]
        return len(self._seen) > 1 or (len(self._seen) == 1 and key not in self._seen)

    def window(self, key: str, alone: int, shared: int, now: float | None = None) -> int:
        """The release window of batch `key`: `alone`, or `shared` (at most `alone`) while
        other small batches run."""
        return min(alone, shared) if self.others(key, now) else alone


#: this worker's small batches, as the aggregator sees them
small_batches = SmallBatches()
