"""Cutting a batch into parts that each fit in one Kafka message (contract: parts)."""

from __future__ import annotations

import json
from typing import Any

#: a part's JSON stays under Kafka's default 1 MB message size
PART_BYTES = 900_000


def split_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Cut a batch into parts whose JSON stays under `PART_BYTES` (contract: parts)."""
    chunks: list[list[Any]] = [[]]
    size = 0
    for item in body["items"]:
        n = len(json.dumps(item, ensure_ascii=False).encode()) + 1
        if chunks[-1] and size + n > PART_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += n
    return [
        {**body, "items": chunk, "part": number, "parts": len(chunks)}
        for number, chunk in enumerate(chunks)
    ]
