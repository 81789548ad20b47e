"""The tables' RocksDB stores get bounded memtables and block caches (not faust's defaults)."""

from __future__ import annotations

from streams.tables import ROCKSDB_OPTIONS, item_results, submissions


def test_every_table_store_uses_the_bounded_rocksdb_options() -> None:
    for table in (item_results, submissions):
        options = table.data.rocksdb_options  # type: ignore[attr-defined]
        for name, value in ROCKSDB_OPTIONS.items():
            assert getattr(options, name) == value, (table.name, name)
