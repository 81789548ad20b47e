"""The aggregator's and the exploder's tables (rocksdict store, changelog-backed).

Tables are written only while handling an event of a co-partitioned topic, so each entry
lands in the changelog partition of that event:
- keyed by the batch (`tenant/batch_id`) on the partition of `batch_id`: `batch_state`,
  `item_results`, `batch_parts`, `active_batches` (aggregator, ledger topic);
- keyed by the batch on the partition of its tenant: `submissions`, `part_ids`,
  `held_parts` (exploder, batches topic).
"""

from __future__ import annotations

from typing import Any

from faust.tables import Table
from faust.types import ModelArg
from faust.types.codecs import CodecArg

from streams.app import app
from streams.topics import PARTITIONS


class BatchwireTable(Table[str, Any]):
    """String keys stored as raw UTF-8; values raw when typed `bytes`, else JSON.

    (Faust picks a table's serializers from its key and value types and falls back to JSON,
    which would quote every key and cannot hold raw bytes.)
    """

    def _serializer_from_type(self, typ: ModelArg | None) -> CodecArg | None:
        return "raw" if typ in (str, bytes) else "json"


#: Memory of each partition's RocksDB store (a table has one per partition). Faust's
#: defaults (3 memtables of 64 MiB, a 2 GiB block cache) let a big batch's results stay in
#: memtables, so a worker's RSS grew with the batch (680 MiB peak for 1,000,000 items).
#: With 4 MiB memtables and an 8 MiB cache, a 300,000-item batch still peaked ~11 MiB above
#: these sizes (125.7 against 114.5 MiB, one run each; 10,000 items: 105.2 / 105.5).
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "block_cache_size": 1024 * 1024,
}


#: `part_ids` holds a few entries at a time, each up to 256 KiB (`streams.part_ids`): the
#: default sizes held ~4 MiB more at the peak of a 1,000,000-item batch in 67 parts.
SMALL_ROCKSDB_OPTIONS: dict[str, int] = {
    **ROCKSDB_OPTIONS,
    "write_buffer_size": 256 * 1024,
    "block_cache_size": 256 * 1024,
}


def _table(
    name: str, value_type: type | None, rocksdb_options: dict[str, int] = ROCKSDB_OPTIONS
) -> BatchwireTable:
    table = BatchwireTable(
        app,
        name=name,
        key_type=str,
        value_type=value_type,
        partitions=PARTITIONS,
        beacon=app.tables.beacon,
        options=dict(rocksdb_options),  # a copy: faust's store pops keys from it
    )
    app.tables.add(table)
    return table


#: tenant/batch_id -> the batch's state dict (`streams.aggregation`).
batch_state = _table("batch-state", None)
#: tenant/batch_id/b<block> -> a block of results (`streams.stored_results`), and
#: tenant/batch_id/index -> one result too big for its block.
item_results = _table("result-blocks", bytes)
#: tenant/batch_id/part[/piece] -> a part's ledger event (a piece of its items:
#: `keys.piece_key`), for stages and sweeps: the event's JSON as it arrived, so it is
#: neither encoded again nor kept decoded in faust's producer buffer until its changelog
#: record is sent.
batch_parts = _table("batch-parts", bytes)
#: tenant/batch_id -> {deadline_at, partition, sweep_at} for batches still running.
active_batches = _table("active-batches", None)
#: tenant/batch_id -> {hashes: {part: sha256}, next_part, next_index, deadline_at, ...}.
submissions = _table("submissions", None)
#: tenant/batch_id/part/chunk -> digests of an accepted part's item ids, while the batch
#: expects more parts (`streams.part_ids`).
part_ids = _table("part-ids", bytes, SMALL_ROCKSDB_OPTIONS)
#: tenant/batch_id/part -> a part that arrived before its predecessor (`streams.held_parts`).
held_parts = _table("held-parts", bytes)
#: tenant/batch_id -> {finished_at, partition} for ended batches, until their retention ends.
finished_batches = _table("finished-batches", None)
