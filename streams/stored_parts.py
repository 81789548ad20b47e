"""The aggregator's stored parts (`batch_parts`), read through a small cache of decoded parts.

A part holds up to a Kafka message of items (about 12,000 no-op items). The release of a
big batch walks one part in slices of half a window, and decoding the whole part from the
store for every slice was the aggregator's largest single cost. Parts never change once
stored, so the cache needs no invalidation beyond `drop`. It holds few parts: a decoded
part takes about ten times its encoded size. Only reads fill it: a part is read when the
release reaches it, and a burst of arriving parts must not push out the one being
released (each arrival would then decode it again, with the arrived part held besides).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from streams.keys import part_key
from streams.tables import batch_parts

CACHED_PARTS = 1
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()


def put(part: dict[str, Any]) -> None:
    """Store a part (call while handling the event that brought it)."""
    batch_parts[part_key(part["tenant"], part["batch_id"], part["part"])] = part


def get(tenant: str, batch_id: str, number: int) -> dict[str, Any] | None:
    key = part_key(tenant, batch_id, number)
    part = _cache.get(key)
    if part is not None:
        _cache.move_to_end(key)
        return part
    part = batch_parts.get(key)
    if part is not None:
        _remember(key, part)
    return part


def drop(tenant: str, batch_id: str, number: int) -> None:
    key = part_key(tenant, batch_id, number)
    _cache.pop(key, None)
    batch_parts.pop(key, None)


def _remember(key: str, part: dict[str, Any]) -> None:
    _cache[key] = part
    _cache.move_to_end(key)
    while len(_cache) > CACHED_PARTS:
        _cache.popitem(last=False)
