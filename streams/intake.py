"""Raw bytes from `batchwire.batches` -> a submission dict, or the contract's error.

Pure and synchronous, so that every input the exploder can receive is checked the same way
in unit tests: `decode_part` returns a dict (still to be validated) or raises a
`SubmissionError` whose code is `invalid_json` or `invalid_batch_format`; it raises nothing
else, whatever the bytes and headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams import codec
from streams.errors import CodecError, SubmissionError
from streams.validation import (
    INVALID,
    INVALID_JSON,
    check_depth,
    check_unicode,
    may_hold_surrogates,
)


def content_type(headers: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None) -> str | None:
    """The `content-type` header of a Kafka message (bytes that are not UTF-8 are replaced)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if str(name).lower() == "content-type":
            if isinstance(value, (bytes, bytearray)):
                return bytes(value).decode("utf-8", "replace")
            return str(value)
    return None


def undecodable_code(raw: bytes) -> str:
    """`invalid_batch_format` for a bad Avro message, valid JSON that is not an object and
    JSON nested too deeply to parse (deeper than `MAX_JSON_DEPTH` whatever the stack in use,
    so that the code does not depend on it); `invalid_json` for anything else."""
    if raw.startswith(codec.MAGIC):
        return INVALID
    try:
        codec.loads_strict(raw.decode("utf-8-sig"))  # as the codec parses it
    except RecursionError:
        return INVALID
    except ValueError:
        return INVALID_JSON
    return INVALID


def decode_part(raw: bytes | None, ctype: str | None) -> dict[str, Any]:
    """The submission in `raw` (Avro single-object or JSON), unvalidated but safe to hash and
    re-encode: nested at most `MAX_JSON_DEPTH` levels, every string UTF-8 encodable."""
    if not isinstance(raw, (bytes, bytearray)):  # a tombstone (a message without a value)
        message = "the message has no value: a submission is a JSON object or Avro"
        raise SubmissionError(INVALID_JSON, message, [{"path": "$", "message": message}])
    try:
        body = codec.decode_submission(raw, ctype)
    except CodecError as exc:
        detail = {"path": "$", "message": str(exc)}
        raise SubmissionError(undecodable_code(raw), str(exc), [detail]) from exc
    check_depth(body)
    if may_hold_surrogates(raw):
        check_unicode(body)
    return body
