"""Avro schemas and the single-object codec (streams.codec); no Kafka."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import faust.serializers.codecs as faust_codecs
import pytest
from fastavro.schema import parse_schema, to_parsing_canonical_form

from streams import codec
from streams.errors import CodecError, UnknownSchemaError

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NAMED_TYPES = ("Item", "Callback", "Counters", "RejectionError")

UNICODE = "héllo wörld — 日本語のテキスト 中文 한국어 😀🚀👍🏽 \u200b ✓"


# --------------------------------------------------------------------------------------
# Sample data
# --------------------------------------------------------------------------------------


def item(**fields: Any) -> dict[str, Any]:
    """A full Item as decoded: every field present, absent ones null."""
    base: dict[str, Any] = dict.fromkeys(
        ("id", "method", "path", "headers", "body", "namespace", "action", "params"), None
    )
    base.update(group=None, stage=None)
    base.update(fields)
    return base


HTTP_ITEM = item(
    id="req-1",
    method="POST",
    path="/v1/orders?lang=日本",
    headers={"X-Trace": "abc", "Accept-Language": "zh-CN"},
    body={"order": {"qty": 3, "price": 9.99, "note": UNICODE, "tags": ["a", "ü", "🎉"]}},
    group="tx-1",
    stage=2,
)
ACTION_ITEM = item(
    id="job-7",
    namespace="billing",
    action="charge",
    params={"amount": 12.5, "currency": "EUR", "dry_run": False, "meta": None, "ids": [1, 2]},
)
COUNTERS = {
    "posted": 1_000_000,
    "processed": 999_998,
    "succeeded": 999_000,
    "failed": 990,
    "skipped": 5,
    "cancelled": 2,
    "timed_out": 1,
}

FULL: dict[str, dict[str, Any]] = {
    "BatchSubmitted": {
        "batch_id": "b-2024-0001",
        "tenant": "acme",
        "items": [HTTP_ITEM, ACTION_ITEM, item(id="2", method="GET", path="/ping")],
        "headers": {"Authorization": "Bearer t0k", "X-Name": "Zoë 🌍"},
        "callback": {"url": "https://hooks.example.com/batch", "mode": "both"},
        "stop_on_failure": False,
        "deadline_s": 600.5,
        "metadata": {"source": "crm", "labels": ["q1", "日本"], "depth": {"a": {"b": [None]}}},
        "part": 2,
        "parts": 3,
    },
    "ItemRequested": {
        "batch_id": "b-1",
        "tenant": "acme",
        "item_id": "req-1",
        "index": 123_456_789_012,
        "group": "tx-1",
        "stage": 2,
        "request": HTTP_ITEM,
        "headers": {"Authorization": "Bearer t0k"},
        "stop_on_failure": True,
        "deadline_at": 1_717_171_717.25,
        "part": 1,
        "submitted_at": "2024-05-31T16:08:37.250000Z",
    },
    "ItemResult": {
        "batch_id": "b-1",
        "tenant": "acme",
        "item_id": "job-7",
        "index": 6,
        "success": False,
        "status": "failed",
        "code": 422,
        "headers": {"content-type": "application/json; charset=utf-8"},
        "output": {"error": {"reason": "無効な値 ❌", "fields": ["amount"]}, "retry": False},
        "errors": ["amount: must be positive", "währung ungültig 💸"],
        "attempts": 3,
        "started_at": "2024-05-31T16:08:37Z",
        "finished_at": "2024-05-31T16:08:38.5Z",
        "request": ACTION_ITEM,
    },
    "BatchStatus": {
        "batch_id": "b-1",
        "tenant": "acme",
        "status": "completed_with_errors",
        "counters": COUNTERS,
        "item_errors": {"job-7": "amount: must be positive", "日本": "失敗しました 😢"},
        "item_errors_truncated": True,
        "parts": 3,
        "parts_received": 3,
        "metadata": ["any", 1, True, None, {"k": "v"}],
        "callback": {"url": "https://hooks.example.com/b", "mode": "batch"},
        "created_at": "2024-05-31T16:00:00Z",
        "updated_at": "2024-05-31T16:10:00Z",
        "finished_at": "2024-05-31T16:10:00Z",
        "deadline_at": 1_717_173_600.0,
    },
    "CallbackRequested": {
        "callback_id": "msg_2d9f1c",
        "batch_id": "b-1",
        "tenant": "acme",
        "url": "https://hooks.example.com/items",
        "mode": "item",
        "payload": {
            "batch_id": "b-1",
            "item_id": "req-1",
            "success": True,
            "errors": [],
            "originalInput": {"body": UNICODE},
            "endpointOutput": {"id": 42, "ratio": -0.125, "ok": True, "none": None},
        },
        "created_at": "2024-05-31T16:10:00Z",
    },
    "DeliveryAttempt": {
        "callback_id": "msg_2d9f1c",
        "batch_id": "b-1",
        "tenant": "acme",
        "url": "https://hooks.example.com/items",
        "attempt": 4,
        "outcome": "retry",
        "http_status": 503,
        "latency_ms": 1234.567,
        "response": "Service Unavailable — réessayez 🙏",
        "error_class": "HTTPStatusError",
        "at": "2024-05-31T16:10:05Z",
    },
    "SubmissionRejected": {
        "error": {
            "code": "invalid_batch_format",
            "message": "item 3 is neither an HTTP call nor an action",
            "details": [{"path": "$.items[3]", "message": "unknown shape 🤷"}],
        },
        "batch_id": "b-9",
        "tenant": "acme",
        "raw": b'{"tenant":"acme","items":[{}]}\xff\x00',
        "at": "2024-05-31T16:10:05Z",
    },
}

FULL["DeadLetter"] = {
    "callback": FULL["CallbackRequested"],
    "attempts": [FULL["DeliveryAttempt"], {**FULL["DeliveryAttempt"], "attempt": 5}],
    "reason": "the retry schedule is exhausted",
    "dead_at": "2024-05-31T18:10:05Z",
}

# The required fields only; everything else must come back as its schema default.
MINIMAL: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "BatchSubmitted": (
        {"tenant": "acme", "items": [{"id": "1", "method": "GET", "path": "/"}]},
        {
            "batch_id": None,
            "tenant": "acme",
            "items": [item(id="1", method="GET", path="/")],
            "headers": {},
            "callback": None,
            "stop_on_failure": True,
            "deadline_s": None,
            "metadata": None,
            "part": 0,
            "parts": 1,
        },
    ),
    "ItemRequested": (
        {
            "batch_id": "b",
            "tenant": "t",
            "item_id": "0",
            "index": 0,
            "request": {"namespace": "n", "action": "a", "params": {}},
            "deadline_at": 1.5,
        },
        {
            "batch_id": "b",
            "tenant": "t",
            "item_id": "0",
            "index": 0,
            "group": None,
            "stage": 0,
            "request": item(namespace="n", action="a", params={}),
            "headers": {},
            "stop_on_failure": True,
            "deadline_at": 1.5,
            "part": 0,
            "submitted_at": None,
        },
    ),
    "ItemResult": (
        {
            "batch_id": "b",
            "tenant": "t",
            "item_id": "0",
            "index": 0,
            "success": True,
            "status": "succeeded",
            "request": {},
        },
        {
            "batch_id": "b",
            "tenant": "t",
            "item_id": "0",
            "index": 0,
            "success": True,
            "status": "succeeded",
            "code": None,
            "headers": {},
            "output": None,
            "errors": [],
            "attempts": 0,
            "started_at": None,
            "finished_at": None,
            "request": item(),
        },
    ),
    "BatchStatus": (
        {"batch_id": "b", "tenant": "t", "status": "accepted"},
        {
            "batch_id": "b",
            "tenant": "t",
            "status": "accepted",
            "counters": dict.fromkeys(COUNTERS, 0),
            "item_errors": {},
            "item_errors_truncated": False,
            "parts": 1,
            "parts_received": 0,
            "metadata": None,
            "callback": None,
            "created_at": None,
            "updated_at": None,
            "finished_at": None,
            "deadline_at": None,
        },
    ),
    "CallbackRequested": (
        {"callback_id": "c", "batch_id": "b", "tenant": "t", "url": "https://x/", "mode": "batch"},
        {
            "callback_id": "c",
            "batch_id": "b",
            "tenant": "t",
            "url": "https://x/",
            "mode": "batch",
            "payload": None,
            "created_at": None,
        },
    ),
    "DeliveryAttempt": (
        {
            "callback_id": "c",
            "batch_id": "b",
            "tenant": "t",
            "url": "https://x/",
            "attempt": 1,
            "outcome": "refused",
        },
        {
            "callback_id": "c",
            "batch_id": "b",
            "tenant": "t",
            "url": "https://x/",
            "attempt": 1,
            "outcome": "refused",
            "http_status": None,
            "latency_ms": 0.0,
            "response": None,
            "error_class": None,
            "at": None,
        },
    ),
    "SubmissionRejected": (
        {"error": {"code": "invalid_json", "message": "bad"}, "raw": b"{"},
        {
            "error": {"code": "invalid_json", "message": "bad", "details": None},
            "batch_id": None,
            "tenant": None,
            "raw": b"{",
            "at": None,
        },
    ),
}

MINIMAL["DeadLetter"] = (
    {"callback": MINIMAL["CallbackRequested"][0], "reason": "gone"},
    {
        "callback": MINIMAL["CallbackRequested"][1],
        "attempts": [],
        "reason": "gone",
        "dead_at": None,
    },
)


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) as written in the Avro specification, independent of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


# --------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------


def test_schema_names_cover_the_top_level_records() -> None:
    assert codec.SCHEMA_NAMES == (
        "BatchSubmitted",
        "ItemRequested",
        "ItemResult",
        "BatchStatus",
        "CallbackRequested",
        "DeliveryAttempt",
        "SubmissionRejected",
        "DeadLetter",
    )
    assert set(FULL) == set(codec.SCHEMA_NAMES) == set(MINIMAL)
    files = {p.stem for p in SCHEMAS.glob("*.avsc")}
    assert files == set(codec.SCHEMA_NAMES) | set(NAMED_TYPES)


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.avsc")), ids=lambda p: p.stem)
def test_every_schema_file_parses_on_its_own(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["type"] == "record"
    assert raw["name"] == path.stem
    assert raw["namespace"] == "batchwire"
    parse_schema(raw, named_schemas={})  # self-contained: no outside named types


def _inlined_records(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [r for x in node for r in _inlined_records(x)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "record" else []
    for key in ("type", "items", "values", "fields"):
        if key in node:
            found += _inlined_records(node[key])
    return found


@pytest.mark.parametrize("name", codec.SCHEMA_NAMES)
def test_inlined_named_types_match_their_own_files(name: str) -> None:
    raw = json.loads((SCHEMAS / f"{name}.avsc").read_text(encoding="utf-8"))
    for record in _inlined_records(raw["fields"]):
        own = json.loads((SCHEMAS / f"{record['name']}.avsc").read_text(encoding="utf-8"))
        assert record == own, f"{name} inlines a {record['name']} that differs from its file"


def test_json_fields_are_marked_nullable_strings_with_a_null_default() -> None:
    marked: dict[str, set[str]] = {}
    for path in SCHEMAS.glob("*.avsc"):
        raw = json.loads(path.read_text(encoding="utf-8"))
        for field in raw["fields"]:
            if field.get("batchwire.json"):
                assert field["type"] == ["null", "string"]
                assert field["default"] is None
                marked.setdefault(path.stem, set()).add(field["name"])
    assert marked == {
        "Item": {"body", "params"},
        "BatchSubmitted": {"metadata"},
        "ItemResult": {"output"},
        "BatchStatus": {"metadata"},
        "CallbackRequested": {"payload"},
        "RejectionError": {"details"},
    }


def test_fingerprint_is_crc64_avro_of_the_canonical_form_little_endian() -> None:
    # The specification's test vector: fingerprint64("null") == 0x63dd24e7cc258f8a.
    assert crc64_avro(b'"null"') == 0x63DD24E7CC258F8A
    seen = set()
    for name in codec.SCHEMA_NAMES:
        raw = json.loads((SCHEMAS / f"{name}.avsc").read_text(encoding="utf-8"))
        canonical = to_parsing_canonical_form(parse_schema(raw, named_schemas={}))
        expected = crc64_avro(canonical.encode()).to_bytes(8, "little")
        assert codec.fingerprint(name) == expected
        seen.add(expected)
    assert len(seen) == len(codec.SCHEMA_NAMES)


def test_docs_and_json_marks_do_not_change_the_fingerprint() -> None:
    raw = json.loads((SCHEMAS / "ItemResult.avsc").read_text(encoding="utf-8"))
    stripped = copy.deepcopy(raw)
    stripped.pop("doc")
    for field in stripped["fields"]:
        field.pop("doc", None)
        field.pop("batchwire.json", None)
    canonical = to_parsing_canonical_form(parse_schema(stripped, named_schemas={}))
    assert crc64_avro(canonical.encode()).to_bytes(8, "little") == codec.fingerprint("ItemResult")


# --------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", codec.SCHEMA_NAMES)
def test_round_trip_full(name: str) -> None:
    datum = FULL[name]
    before = copy.deepcopy(datum)
    data = codec.encode(name, datum)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.fingerprint(name)
    assert codec.decode(data) == (name, before)
    assert codec.decode_as(name, data) == before
    assert datum == before, "encode must not modify the caller's datum"


@pytest.mark.parametrize("name", codec.SCHEMA_NAMES)
def test_absent_optional_fields_take_their_defaults(name: str) -> None:
    given, expected = MINIMAL[name]
    assert codec.decode(codec.encode(name, given)) == (name, expected)


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        "",
        "plain text, sent as it is",
        '{"looks": "like json"}',
        0,
        -17,
        2**62,
        3.5,
        -1e-300,
        True,
        False,
        {"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}},
        [None, True, 1, 1.5, "s", [], {}],
        {UNICODE: [UNICODE, {"日本": "🚀"}]},
    ],
    ids=repr,
)
def test_json_values_of_every_kind_survive_at_every_depth(value: Any) -> None:
    submitted = {
        "tenant": "t",
        "items": [{"id": "x", "method": "PUT", "path": "/p", "body": value}],
        "metadata": value,
    }
    result = dict(FULL["ItemResult"], output=value, request=item(params=value))
    _, back = codec.decode(codec.encode("BatchSubmitted", submitted))
    assert back["items"][0]["body"] == value
    assert type(back["items"][0]["body"]) is type(value)
    assert back["metadata"] == value
    back_result = codec.decode_as("ItemResult", codec.encode("ItemResult", result))
    assert back_result["output"] == value
    assert type(back_result["output"]) is type(value)
    assert back_result["request"]["params"] == value
    # a value written ahead as JSON text (an action's output) is stored as the value is
    written = dict(result, output=codec.json_text(value))
    assert codec.encode("ItemResult", written) == codec.encode("ItemResult", result)


def test_decode_without_parsing_json_gives_json_text_that_encodes_back() -> None:
    result = dict(FULL["ItemResult"], output={"a": [1, "é"]}, request=item(params={"n": 2}))
    data = codec.encode("ItemResult", result)
    lazy = codec.decode_as("ItemResult", data, parse_json=False)
    assert lazy["output"] == codec.JsonText('{"a":[1,"é"]}')
    assert lazy["request"]["params"] == codec.JsonText('{"n":2}')
    assert lazy["request"]["body"] is None
    assert {k: v for k, v in lazy.items() if k not in ("output", "request")} == {
        k: v
        for k, v in codec.decode_as("ItemResult", data).items()
        if k not in ("output", "request")
    }
    assert codec.encode("ItemResult", lazy) == data


def test_json_text_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        codec.json_text({"x": float("nan")})
    with pytest.raises(TypeError):
        codec.json_text({"x": object()})


def test_json_null_and_absent_both_come_back_as_none() -> None:
    for request in ({"body": None}, {}):
        datum = dict(FULL["ItemRequested"], request=request)
        assert (
            codec.decode_as("ItemRequested", codec.encode("ItemRequested", datum))["request"][
                "body"
            ]
            is None
        )


def test_json_is_stored_compact_and_unescaped() -> None:
    datum = dict(FULL["ItemResult"], output={"k": "😀 日本", "l": [1, 2]})
    data = codec.encode("ItemResult", datum)
    assert '{"k":"😀 日本","l":[1,2]}'.encode() in data
    assert b"\\u" not in data


def test_large_body_of_about_one_megabyte() -> None:
    rows = [
        {"i": i, "name": f"row {i} — 日本語 😀", "values": [i, i / 3, None, True]}
        for i in range(12_000)
    ]
    body = {"rows": rows, "blob": "x" * 100_000}
    assert len(json.dumps(body, ensure_ascii=False).encode()) > 1_000_000
    datum = dict(FULL["ItemRequested"], request=item(id="big", method="POST", path="/", body=body))
    data = codec.encode("ItemRequested", datum)
    assert len(data) > 1_000_000
    assert codec.decode_as("ItemRequested", data)["request"]["body"] == body


def test_many_items_in_one_batch() -> None:
    items = [
        {"id": str(i), "namespace": "ns", "action": "a", "params": {"n": i}} for i in range(5000)
    ]
    data = codec.encode("BatchSubmitted", {"tenant": "t", "items": items})
    back = codec.decode_as("BatchSubmitted", data)["items"]
    assert [x["params"]["n"] for x in back] == list(range(5000))
    assert items[0]["params"] == {"n": 0}, "nested items must not be modified"


# --------------------------------------------------------------------------------------
# Encode errors
# --------------------------------------------------------------------------------------


def test_encode_missing_required_field_names_it() -> None:
    datum = {k: v for k, v in FULL["ItemResult"].items() if k != "tenant"}
    with pytest.raises(CodecError, match=r"ItemResult.*missing required field\(s\) tenant"):
        codec.encode("ItemResult", datum)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("output", {1, 2}, "field output: .*not JSON serializable"),
        ("request", "not a record", "field request: expected a record"),
        ("code", "200", "code"),
        ("index", "seven", "index"),
    ],
)
def test_encode_bad_values_raise_codec_error(field: str, value: Any, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        codec.encode("ItemResult", dict(FULL["ItemResult"], **{field: value}))


def test_encode_bad_nested_json_names_the_path() -> None:
    datum = {"tenant": "t", "items": [{"id": "1", "body": object()}]}
    with pytest.raises(CodecError, match=r"field items: field body: .*not JSON serializable"):
        codec.encode("BatchSubmitted", datum)


def test_encode_unknown_schema_or_non_mapping() -> None:
    with pytest.raises(CodecError, match="unknown schema 'Nope'"):
        codec.encode("Nope", {})
    with pytest.raises(CodecError, match="expected a mapping"):
        codec.encode("ItemResult", [("tenant", "t")])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Decode errors
# --------------------------------------------------------------------------------------


def test_unknown_fingerprint_is_reported_in_hex() -> None:
    data = bytearray(codec.encode("ItemResult", FULL["ItemResult"]))
    data[2:10] = bytes.fromhex("0123456789abcdef")
    with pytest.raises(
        UnknownSchemaError, match="unknown Avro schema fingerprint 0123456789abcdef"
    ):
        codec.decode(bytes(data))
    with pytest.raises(CodecError):  # UnknownSchemaError is a CodecError
        codec.decode_as("ItemResult", bytes(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc3",
        b"\xc3\x01",
        b"\xc3\x01\x00\x01\x02",
        b'{"tenant": "acme"}',
        b"\x00" * 64,
        b"\xc3\x02" + codec.fingerprint("ItemResult") + b"\x00",
    ],
    ids=repr,
)
def test_garbage_is_a_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError, match="not an Avro single-object message"):
        codec.decode(data)


@pytest.mark.parametrize("name", codec.SCHEMA_NAMES)
def test_every_truncation_is_a_codec_error(name: str) -> None:
    data = codec.encode(name, FULL[name])
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:cut])


def test_trailing_bytes_are_a_codec_error() -> None:
    data = codec.encode("DeliveryAttempt", FULL["DeliveryAttempt"])
    with pytest.raises(CodecError, match="1 byte\\(s\\) after the datum"):
        codec.decode(data + b"\x00")


def test_corrupt_bytes_never_escape_as_other_errors() -> None:
    data = codec.encode("ItemResult", FULL["ItemResult"])
    rnd = random.Random(20240531)
    for _ in range(500):
        corrupt = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            corrupt[rnd.randrange(10, len(corrupt))] = rnd.randrange(256)
        try:
            name, _ = codec.decode(bytes(corrupt))
        except CodecError:
            continue
        assert name == "ItemResult"


def test_huge_declared_length_is_a_codec_error() -> None:
    # batch_id claims a string of ~2**62 bytes.
    data = codec.fingerprint("ItemResult") + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"
    with pytest.raises(CodecError, match="corrupt or truncated ItemResult"):
        codec.decode(b"\xc3\x01" + data)


def test_corrupt_json_text_is_a_codec_error() -> None:
    data = codec.encode("CallbackRequested", dict(FULL["CallbackRequested"], payload="abcd"))
    assert b'"abcd"' in data
    broken = data.replace(b'"abcd"', b"{abcd}")  # same length: still valid Avro
    with pytest.raises(CodecError, match="CallbackRequested message: a JSON field is not JSON"):
        codec.decode(broken)


def test_decode_as_another_schema_is_a_codec_error() -> None:
    data = codec.encode("BatchStatus", FULL["BatchStatus"])
    with pytest.raises(CodecError, match="expected a ItemResult message, got BatchStatus"):
        codec.decode_as("ItemResult", data)


# --------------------------------------------------------------------------------------
# decode_submission
# --------------------------------------------------------------------------------------

SUBMISSION = {
    "tenant": "acme",
    "items": [{"id": "1", "method": "POST", "path": "/x", "body": {"名前": "😀"}}],
    "unknown_field": [1, 2],  # kept: validation happens elsewhere
}


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (json.dumps(SUBMISSION).encode(), "application/json"),
        (json.dumps(SUBMISSION, ensure_ascii=False).encode(), "application/json; charset=utf-8"),
        (json.dumps(SUBMISSION).encode(), None),
        (b" \n\t\r " + json.dumps(SUBMISSION, indent=2).encode(), None),
        (b"\xef\xbb\xbf" + json.dumps(SUBMISSION).encode(), None),
        # JSON any JSON content type would take decodes so without one too: the exploder
        # decodes a held part again without its message's headers
        (b"\xef\xbb\xbf \n " + json.dumps(SUBMISSION).encode(), None),
        (b"  " + json.dumps(SUBMISSION).encode(), "APPLICATION/JSON"),
    ],
)
def test_decode_submission_json(data: bytes, content_type: str | None) -> None:
    assert codec.decode_submission(data, content_type) == SUBMISSION


def test_decode_submission_avro() -> None:
    data = codec.encode("BatchSubmitted", FULL["BatchSubmitted"])
    assert codec.decode_submission(data) == FULL["BatchSubmitted"]
    assert codec.decode_submission(data, "application/octet-stream") == FULL["BatchSubmitted"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_decode_submission_avro_refuses_non_json_constants_in_its_json_fields(
    constant: str,
) -> None:
    """As a JSON submission does: `NaN` in `metadata` or an item's `params` is not JSON."""
    sub = FULL["BatchSubmitted"]
    for bad in (
        {**sub, "metadata": codec.JsonText(f'{{"x": {constant}}}')},
        {**sub, "items": [{**ACTION_ITEM, "params": codec.JsonText(f"[{constant}]")}]},
    ):
        with pytest.raises(CodecError, match=f"{constant} is not JSON"):
            codec.decode_submission(codec.encode("BatchSubmitted", bad))


def test_decode_submission_requires_a_batch_submitted() -> None:
    data = codec.encode("ItemResult", FULL["ItemResult"])
    with pytest.raises(CodecError, match="expected a BatchSubmitted message"):
        codec.decode_submission(data)


def test_decode_submission_invalid_json_names_line_and_column() -> None:
    bad = b'{\n  "tenant": "acme",\n  "items": [1, 2,]\n}'
    with pytest.raises(CodecError, match=r"invalid JSON at line 3, column 18: Expecting value"):
        codec.decode_submission(bad)
    with pytest.raises(CodecError, match=r"invalid JSON at line 1, column 1"):
        codec.decode_submission(b"tenant=acme", "application/json")


def test_decode_submission_invalid_utf8_names_line_and_column() -> None:
    bad = b'{"tenant":\n "ac\xffme"}'
    with pytest.raises(CodecError, match=r"not UTF-8 at line 2, column 5"):
        codec.decode_submission(bad)


def test_decode_submission_json_must_be_an_object() -> None:
    with pytest.raises(CodecError, match="not an object"):
        codec.decode_submission(b"[1, 2]", "application/json")


def test_decode_submission_neither_json_nor_avro() -> None:
    with pytest.raises(CodecError, match="not an Avro single-object message"):
        codec.decode_submission(b"hello")


# --------------------------------------------------------------------------------------
# Faust
# --------------------------------------------------------------------------------------


def test_faust_codec_round_trip() -> None:
    codec.register_codecs()
    registered = faust_codecs.codecs["avro-ItemResult"]
    codec.register_codecs()  # idempotent
    assert faust_codecs.codecs["avro-ItemResult"] is registered
    for name in codec.SCHEMA_NAMES:
        assert isinstance(faust_codecs.codecs[f"avro-{name}"], codec.AvroCodec)

    datum = FULL["ItemResult"]
    data = faust_codecs.dumps("avro-ItemResult", datum)
    assert isinstance(data, bytes)
    assert data[:10] == b"\xc3\x01" + codec.fingerprint("ItemResult")
    assert faust_codecs.loads("avro-ItemResult", data) == datum
    assert codec.decode(data) == ("ItemResult", datum)

    with pytest.raises(CodecError, match="expected a ItemResult message"):
        faust_codecs.loads("avro-ItemResult", codec.encode("BatchStatus", FULL["BatchStatus"]))


def test_faust_codec_chains_with_other_codecs() -> None:
    chained = codec.AvroCodec("BatchStatus") | faust_codecs.binary()
    data = chained.dumps(FULL["BatchStatus"])
    assert not data.startswith(b"\xc3")  # base64 on top of Avro
    assert chained.loads(data) == FULL["BatchStatus"]


def test_faust_codec_rejects_an_unknown_schema() -> None:
    with pytest.raises(CodecError, match="unknown schema"):
        codec.AvroCodec("Nope")


# --------------------------------------------------------------------------------------
# Runs of fields
# --------------------------------------------------------------------------------------


class _Id(str):
    """A str subclass: not plainly a string to the compiled writer, so fastavro writes it."""


def test_runs_of_fields_put_together_are_the_whole_record() -> None:
    request = {"id": "x", "namespace": "ns", "action": "go", "params": {"a": [1, None]}}
    datum = {
        "batch_id": "b-1",
        "tenant": "acme",
        "item_id": "x",
        "index": 7,
        "group": "g",
        "stage": 2,
        "request": request,
        "headers": {"X-A": "1"},
        "stop_on_failure": False,
        "deadline_at": 12.5,
        "part": 3,
        "submitted_at": "2026-01-01T00:00:00Z",
    }
    runs = [
        codec.FieldRun("ItemRequested", "batch_id", "tenant"),
        codec.FieldRun("ItemRequested", "item_id", "request"),
        codec.FieldRun("ItemRequested", "headers", "submitted_at"),
    ]
    whole = codec.encode("ItemRequested", datum)
    assert codec.header("ItemRequested") + b"".join(r.encode(datum) for r in runs) == whole
    # a value the compiled writer leaves to fastavro gives the same bytes
    assert runs[1].encode({**datum, "item_id": _Id("x")}) == runs[1].encode(datum)


def test_a_run_that_cannot_be_encoded_says_which() -> None:
    run = codec.FieldRun("ItemRequested", "item_id", "request")
    with pytest.raises(CodecError, match="ItemRequested fields item_id to request"):
        run.encode({"item_id": "x", "index": "seven", "stage": 0, "request": {}})


@pytest.mark.parametrize("number", ["1e999", "-1e400", "1E999"])
def test_loads_strict_refuses_a_number_past_a_floats_range(number: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        codec.loads_strict(f'{{"a": [{number}]}}')
    assert codec.loads_strict('{"a": 1e308}') == {"a": 1e308}
