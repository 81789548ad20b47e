"""Issue 7, scenario 5 at unit level: whatever bytes or values arrive, decoding and
validation raise only `SubmissionError` with a contract code (a JSON path where the contract
wants one), everything the exploder then builds from an accepted part can be encoded, and
every rejection fits in one Kafka message.  Profiles: see tests/fixtures/hostile.py."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams import codec, ledger_pieces
from streams.aggregation import RELEASE_WINDOW
from streams.errors import SubmissionError
from streams.messages import item_requested, part_fields, rejection
from streams.parts import MAX_MESSAGE_BYTES
from streams.validation import PRIORITY, Submission, content_hash, validate_submission
from tests.fixtures.hostile import (
    ALLOWED,
    CONTRACT_CODES,
    MAX_ITEMS,
    PATH_CODES,
    Mutated,
    Raw,
    hostile_raw,
    judge,
    mutated_submissions,
    small_json,
    valid_submissions,
)

#: kinds that may decode into a valid part by chance (a flipped byte inside a string)
MAY_BE_VALID = {"avro with a corrupted byte"}


def assert_contract_error(error: SubmissionError, raw: bytes) -> None:
    assert error.code in CONTRACT_CODES, error.as_error()
    assert error.message and isinstance(error.message, str)
    if error.code in PATH_CODES:
        assert error.details, error.as_error()
        for detail in error.details:
            assert str(detail["path"]).startswith("$"), detail
    encoded = codec.encode("SubmissionRejected", rejection(error, raw, batch_id=None, tenant=None))
    assert len(encoded) < min(MAX_MESSAGE_BYTES, len(raw) + 64 * 1024)


def assert_explodable(sub: Submission, body: dict[str, Any]) -> None:
    """Everything the exploder writes for an accepted part encodes (no stack overflow, no
    string that is not UTF-8), and each item's message put together from its ledger piece
    is the one encoding it whole gives."""
    content_hash(body)
    fields = part_fields(sub, 0.0, "2026-01-01T00:00:00Z", prerelease_below=RELEASE_WINDOW)
    pieces = ledger_pieces.make(fields, sub.items)
    for piece in pieces:
        assert ledger_pieces.decode(ledger_pieces.encode(piece)) == piece
    requested = [piece.requested(entry) for piece in pieces for entry in piece.items]
    whole = [codec.encode("ItemRequested", item_requested(fields, item)) for item in sub.items]
    assert requested == whole


@given(valid_submissions(), st.booleans())
def test_a_valid_submission_is_accepted_as_json_and_as_avro(
    raw: dict[str, Any], ascii_only: bool
) -> None:
    as_json = json.dumps(raw, ensure_ascii=ascii_only).encode()
    as_avro = codec.encode("BatchSubmitted", raw)
    for value in (as_json, as_avro):
        verdict = judge(value)
        assert isinstance(verdict, Submission), verdict.as_error()
        assert [item["id"] for item in verdict.items] == [item["id"] for item in raw["items"]]
        assert verdict.tenant == raw["tenant"]
        assert verdict.batch_id == raw["batch_id"]
        assert_explodable(verdict, json.loads(as_json))


@given(mutated_submissions(), st.booleans())
def test_one_broken_field_is_rejected_with_its_code(mutated: Mutated, ascii_only: bool) -> None:
    value = json.dumps(mutated.raw, ensure_ascii=ascii_only).encode()
    verdict = judge(value)
    assert isinstance(verdict, SubmissionError), f"accepted: {mutated.what}"
    try:
        json.dumps(mutated.raw, allow_nan=False)
        code = mutated.code
    except ValueError:  # a NaN or an infinity: Python writes it, but it is no JSON
        code = "invalid_json"
    assert verdict.code == code, (mutated.what, verdict.as_error())
    assert_contract_error(verdict, value)


#: the code a kind of raw message must get, by the start of its kind
KIND_CODES = {
    "json truncated": "invalid_json",
    "json garbage": "invalid_json",
    "json with": "invalid_json",  # invalid UTF-8, bare words
    "lone surrogate": "invalid_json",
    "json, not an object": "invalid_batch_format",
    "avro": "invalid_batch_format",
    "json nested": "invalid_batch_format",
    "params nested": "invalid_batch_format",
    "metadata nested": "invalid_batch_format",
}


@given(hostile_raw())
def test_hostile_bytes_are_rejected_with_a_contract_code(raw: Raw) -> None:
    verdict = judge(raw.value, raw.headers)
    if isinstance(verdict, Submission):
        assert raw.kind in MAY_BE_VALID, f"accepted: {raw.kind}"
        assert_explodable(verdict, codec.decode_submission(raw.value))
        return
    assert verdict.code in {"invalid_json", *PRIORITY}, (raw.kind, verdict.as_error())
    for prefix, code in KIND_CODES.items():
        if raw.kind.startswith(prefix):
            assert verdict.code == code, (raw.kind, verdict.as_error())
    assert_contract_error(verdict, raw.value)


FIELDS = ["tenant", "batch_id", "items", "headers", "callback", "stop_on_failure"]
FIELDS += ["deadline_s", "metadata", "part", "parts"]
ITEM_FIELDS = ["id", "method", "path", "headers", "body", "namespace", "action", "params"]
ITEM_FIELDS += ["group", "stage"]
any_item = st.dictionaries(st.sampled_from(ITEM_FIELDS), small_json, max_size=8) | small_json


@given(
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), small_json, max_size=8),
    st.lists(any_item, max_size=8),
)
def test_validation_of_any_json_object_raises_only_contract_errors(
    raw: dict[str, Any], items: list[Any]
) -> None:
    if items:
        raw["items"] = items
    try:
        sub = validate_submission(raw, allowed_tenants=ALLOWED, max_items=MAX_ITEMS)
    except SubmissionError as exc:
        assert_contract_error(exc, json.dumps(raw).encode())
    else:
        assert_explodable(sub, raw)
