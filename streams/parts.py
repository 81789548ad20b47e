"""Cutting a batch into parts that each fit in one Kafka message (contract: parts)."""

from __future__ import annotations

import json
from typing import Any

from streams.errors import SubmissionError

#: a part's JSON stays under Kafka's default 1 MB message size
PART_BYTES = 900_000
#: the largest message the pipeline's topics take (every producer's `max_request_size`, the
#: topics' `max.message.bytes`, the local broker's `message.max.bytes`): a bigger part, an
#: item too big to travel, cannot be sent
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
#: the largest value the pipeline writes in one message: room left for its key, headers and
#: the record's framing (a few hundred bytes)
MAX_VALUE_BYTES = MAX_MESSAGE_BYTES - 16 * 1024
#: the largest part the edges (HTTP, NDJSON, the client) accept: room left, under
#: `MAX_VALUE_BYTES`, for what the exploder adds to a part's item on its way (the piece's and
#: the release's fields, another encoding), so an accepted part always travels
MAX_PART_BYTES = MAX_MESSAGE_BYTES - 64 * 1024


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


def encode_parts(
    body: dict[str, Any], *, ensure_ascii: bool = True
) -> list[tuple[dict[str, Any], bytes]]:
    """The batch's parts and their JSON messages, every one checked to fit in a Kafka message
    before any is sent (a batch must never be published in part)."""
    encoded = []
    first = 0
    for part in split_parts(body):
        raw = json.dumps(part, ensure_ascii=ensure_ascii).encode()
        check_part_size(len(raw), f"$.items[{first}]" if len(part["items"]) == 1 else "$")
        encoded.append((part, raw))
        first += len(part["items"])
    return encoded


def check_part_size(size: int, path: str, limit: int = MAX_PART_BYTES) -> None:
    """Refuse a part over one Kafka message, before any part of its batch is published:
    413 `too_many_items` at `path` (the item that does not fit with the batch's fields)."""
    if size > limit:
        raise SubmissionError(
            "too_many_items",
            f"{path} does not fit in one Kafka message: with the batch's fields it takes "
            f"{size} bytes, over {limit}",
            [{"path": path, "message": f"{size} bytes"}],
        )
