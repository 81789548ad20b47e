"""streams.parts: a batch cut into parts, each checked to fit in one Kafka message."""

from __future__ import annotations

import json

import pytest

from streams.errors import SubmissionError
from streams.parts import MAX_MESSAGE_BYTES, MAX_PART_BYTES, PART_BYTES, encode_parts, split_parts


def batch(items: list[dict[str, object]], **fields: object) -> dict[str, object]:
    return {"tenant": "acme", "batch_id": "b1", "items": items, **fields}


def test_encoded_parts_are_the_split_parts_as_json() -> None:
    items = [{"id": str(i), "namespace": "n", "action": "a", "params": {"pad": "é" * 500}}
             for i in range(3000)]  # fmt: skip
    body = batch(items)
    encoded = encode_parts(body)
    assert len(encoded) > 1
    assert [part for part, _ in encoded] == split_parts(body)
    assert [json.loads(raw) for _, raw in encoded] == split_parts(body)
    assert all(len(raw) <= MAX_MESSAGE_BYTES for _, raw in encoded)
    # the client's encoding keeps UTF-8 as it is: fewer bytes for the same parts
    utf8 = encode_parts(body, ensure_ascii=False)
    assert [json.loads(raw) for _, raw in utf8] == split_parts(body)
    assert sum(len(raw) for _, raw in utf8) < sum(len(raw) for _, raw in encoded)


def test_an_item_too_big_for_a_message_is_named_by_its_path() -> None:
    small = {"id": "s", "namespace": "n", "action": "a", "params": {}}
    huge = {"id": "h", "namespace": "n", "action": "a", "params": {"pad": "x" * MAX_MESSAGE_BYTES}}
    with pytest.raises(SubmissionError) as raised:
        encode_parts(batch([small, small | {"id": "t"}, huge]))
    assert raised.value.code == "too_many_items"
    assert [d["path"] for d in raised.value.details] == ["$.items[2]"]


def test_an_item_that_fits_alone_but_not_with_the_batch_fields_is_refused() -> None:
    item = {"id": "i", "namespace": "n", "action": "a", "params": {"pad": "x" * PART_BYTES}}
    metadata = {"note": "y" * (MAX_MESSAGE_BYTES - PART_BYTES)}
    assert encode_parts(batch([item]))  # alone it fits
    with pytest.raises(SubmissionError) as raised:
        encode_parts(batch([item], metadata=metadata))
    assert [d["path"] for d in raised.value.details] == ["$.items[0]"]
    # many small items under fields that alone exceed a message: the batch's fields
    with pytest.raises(SubmissionError) as raised:
        encode_parts(batch([{"id": "a"}, {"id": "b"}], metadata={"note": "z" * MAX_MESSAGE_BYTES}))
    assert [d["path"] for d in raised.value.details] == ["$"]


def test_an_item_that_fits_a_message_but_not_the_exploders_fields_is_refused() -> None:
    """The edges keep room, under a message, for what the exploder adds to an item."""
    item = {
        "id": "n",
        "namespace": "n",
        "action": "a",
        "params": {"pad": "x" * (MAX_PART_BYTES - 200)},
    }
    assert encode_parts(batch([item]))
    near = {**item, "params": {"pad": "x" * (MAX_MESSAGE_BYTES - 30_000)}}
    with pytest.raises(SubmissionError) as raised:
        encode_parts(batch([near]))
    assert raised.value.code == "too_many_items"
    assert [d["path"] for d in raised.value.details] == ["$.items[0]"]
