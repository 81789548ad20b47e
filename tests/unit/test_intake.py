"""Decoding raw `batchwire.batches` messages (streams/intake.py) and the input limits of
streams/validation.py that keep every later step (hashing, encoding) from failing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams import codec
from streams.errors import SubmissionError
from streams.intake import content_type, decode_part
from streams.messages import rejection
from streams.validation import MAX_DETAILS, MAX_JSON_DEPTH, content_hash, validate_submission

ALLOWED = frozenset({"acme"})


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def with_params(params: bytes) -> bytes:
    head = b'{"tenant":"acme","batch_id":"b","items":[{"namespace":"a","action":"b","params":'
    return head + params + b"}]}"


def code_of(raw: bytes, ctype: str | None = None) -> str:
    with pytest.raises(SubmissionError) as info:
        decode_part(raw, ctype)
    return info.value.code


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_json_too_deep_to_parse_is_invalid_batch_format(depth: int) -> None:
    assert code_of(with_params(nested(depth))) == "invalid_batch_format"
    assert code_of(nested(depth), "application/json") == "invalid_batch_format"
    assert code_of(nested(depth)[:-1], "application/json") == "invalid_batch_format"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH - 2, 500, 700])
def test_json_deeper_than_the_limit_is_invalid_batch_format_with_its_path(depth: int) -> None:
    """The submission is level 1, items 2, an item 3: params of depth d reach 3 + d."""
    raw = with_params(nested(depth))
    if 3 + depth <= MAX_JSON_DEPTH:
        body = decode_part(raw, None)
        content_hash(body)  # every later step can still encode it
        return
    with pytest.raises(SubmissionError) as info:
        decode_part(raw, None)
    assert info.value.code == "invalid_batch_format"
    assert info.value.details[0]["path"].startswith("$.items[0].params[0]")


@pytest.mark.parametrize("depth", range(900, 1000, 5))
def test_json_near_the_parsers_own_limit_gets_one_code(depth: int) -> None:
    """Whether the parser gives up depends on the stack in use; the code does not."""
    assert code_of(with_params(nested(depth))) == "invalid_batch_format"


def test_deep_json_inside_an_avro_message_is_refused_too() -> None:
    deep: Any = []
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    item = {"id": "1", "namespace": "a", "action": "b", "params": {"x": 1}}
    raw = codec.encode("BatchSubmitted", {"tenant": "acme", "items": [item], "metadata": deep})
    assert code_of(raw) == "invalid_batch_format"


@pytest.mark.parametrize("escape", [b"\\udc00", b"\\uD800", b"x\\ud83d", b"\\ude00y"])
def test_a_lone_surrogate_escape_is_invalid_json(escape: bytes) -> None:
    raw = with_params(b'{"x": "' + escape + b'"}')
    with pytest.raises(SubmissionError) as info:
        decode_part(raw, None)
    assert info.value.code == "invalid_json"
    assert info.value.details[0]["path"] == "$.items[0].params.x"


def test_a_surrogate_pair_escape_is_fine() -> None:
    body = decode_part(with_params(b'{"x": "\\ud83d\\ude00"}'), None)
    assert body["items"][0]["params"] == {"x": "\U0001f600"}
    content_hash(body)


def test_a_content_type_header_that_is_not_utf8_is_read_anyway() -> None:
    assert content_type([("content-type", b"application/json\xff")]) == "application/json\ufffd"
    assert code_of(b"{1", content_type([("Content-Type", b"\xff\xfe")])) == "invalid_json"


def test_a_rejection_stays_small_whatever_the_number_of_problems() -> None:
    """A part of 900 kB holding 300,000 bad items: one detail each would be 21 MB."""
    raw = json.dumps({"tenant": "acme", "items": [1] * 300_000}).encode()
    with pytest.raises(SubmissionError) as info:
        validate_submission(json.loads(raw), allowed_tenants=ALLOWED, max_items=10**6)
    assert len(info.value.details) == MAX_DETAILS
    assert "300000 problems" in info.value.message
    assert f"the first {MAX_DETAILS} of 300000" in info.value.message
    encoded = codec.encode(
        "SubmissionRejected", rejection(info.value, raw, batch_id=None, tenant=None)
    )
    assert len(encoded) < len(raw) + 64 * 1024


def test_user_values_quoted_in_messages_are_clipped() -> None:
    tenant = "t" * 1_000_000
    with pytest.raises(SubmissionError) as info:
        validate_submission(
            {"tenant": tenant, "items": [{"method": "GET", "path": "/"}]},
            allowed_tenants=ALLOWED,
            max_items=10,
        )
    assert info.value.code == "tenant_not_allowed"
    assert len(json.dumps(info.value.as_error())) < 1000


def test_paths_stay_small_whatever_the_keys() -> None:
    """100 header keys of 100 kB: each detail's path names its key, cut short."""
    headers = {f"{i:03d}" + "k" * 100_000: i for i in range(100)}
    with pytest.raises(SubmissionError) as info:
        validate_submission(
            {"tenant": "acme", "items": [{"method": "GET", "path": "/"}], "headers": headers},
            allowed_tenants=ALLOWED,
            max_items=10,
        )
    assert len(info.value.details) == 100
    assert len(json.dumps(info.value.as_error())) < 100 * 300
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        deep = {"k" * 1000: deep}
    with pytest.raises(SubmissionError) as info:
        decode_part(json.dumps({"tenant": "acme", "metadata": deep}).encode(), None)
    assert len(info.value.details[0]["path"]) < MAX_JSON_DEPTH * 100


def test_a_message_without_a_value_is_invalid_json() -> None:
    """A tombstone on `batchwire.batches` (a key, no value) is refused, not a crash."""
    with pytest.raises(SubmissionError) as info:
        decode_part(None, None)
    assert info.value.code == "invalid_json"


@pytest.mark.parametrize(
    "params",
    [b"NaN", b"[1, Infinity]", b'{"x": -Infinity}', b"1" * 5000],
)
def test_json_constants_and_integers_too_long_to_convert_are_invalid_json(params: bytes) -> None:
    """NaN and Infinity are not JSON (the status and results would echo them to clients
    whose parsers refuse them); Python refuses integers past 4,300 digits with a ValueError
    that is not a JSONDecodeError."""
    assert code_of(with_params(params)) == "invalid_json"
