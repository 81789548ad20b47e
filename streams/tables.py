"""The aggregator's and the exploder's tables (rocksdict store, changelog-backed).

Tables are written only while handling an event of a co-partitioned topic, so each entry
lands in the changelog partition of that event:
- keyed by the batch (`tenant/batch_id`) on the partition of `batch_id`: `batch_state`,
  `item_results`, `batch_parts`, `active_batches` (aggregator, results + ledger topics);
- keyed by the batch on the partition of its tenant: `submissions`, `held_parts`
  (exploder, batches topic).
"""

from __future__ import annotations

from typing import Any, cast

from faust.tables import Table

from streams.app import app
from streams.topics import PARTITIONS


def _table(name: str, value_serializer: str) -> Table[str, Any]:
    """A rocksdict-backed table with string keys stored as raw bytes."""
    table = cast(Table[str, Any], app.Table(name, partitions=PARTITIONS))
    table.key_serializer = "raw"
    table.value_serializer = value_serializer
    return table


#: tenant/batch_id -> the batch's state dict (`streams.aggregation`).
batch_state = _table("batch-state", "json")
#: tenant/batch_id/index -> 8-byte source offset + the Avro-encoded `ItemResult`.
item_results = _table("item-results", "raw")
#: tenant/batch_id/part -> the part's ledger event (its items), for stages and sweeps.
batch_parts = _table("batch-parts", "json")
#: tenant/batch_id -> {deadline_at, partition, ...} for batches still running.
active_batches = _table("active-batches", "json")
#: tenant/batch_id -> {hashes: {part: sha256}, next_part, next_index, deadline_at, ...}.
submissions = _table("submissions", "json")
#: tenant/batch_id/part -> a part that arrived before its predecessor (raw bytes).
held_parts = _table("held-parts", "raw")
