"""Avro single-object codec for every batchwire message.

A message is the Avro single-object encoding of one datum: the marker ``C3 01``, the
8-byte little-endian CRC-64-AVRO fingerprint of the schema's parsing canonical form, then
the datum in Avro binary. A consumer needs no registry: the fingerprint names the schema.

Schemas live in ``schemas/*.avsc``; each top-level schema file is self-contained (the named
types it uses are inlined). A field marked ``"batchwire.json": true`` (Avro type
``["null", "string"]``) holds any JSON value: the codec stores its compact JSON text and
gives back the parsed value, at any depth (records, unions, arrays, maps).

Schemas are parsed once, at import; each one's JSON-field plan is precomputed so that
``encode``/``decode`` touch only the parts of a datum that hold JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Final

import faust.serializers.codecs as faust_codecs
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as _avro_fingerprint
from fastavro.schema import parse_schema, to_parsing_canonical_form

from streams.avro_compiled import Reader, Writer, compile_reader, compile_writer
from streams.errors import CodecError, UnknownSchemaError

__all__ = [
    "MAGIC",
    "SCHEMAS_DIR",
    "SCHEMA_NAMES",
    "AvroCodec",
    "FieldRun",
    "JsonText",
    "decode",
    "decode_as",
    "decode_submission",
    "encode",
    "fingerprint",
    "header",
    "json_text",
    "loads_strict",
    "register_codecs",
]

SCHEMAS_DIR: Final = Path(__file__).resolve().parent.parent / "schemas"

#: The schemas a message can be encoded with (one per topic).
SCHEMA_NAMES: Final[tuple[str, ...]] = (
    "BatchSubmitted",
    "ItemRequested",
    "ItemResult",
    "BatchStatus",
    "CallbackRequested",
    "DeliveryAttempt",
    "SubmissionRejected",
    "DeadLetter",
)

#: The single-object encoding marker.
MAGIC: Final = b"\xc3\x01"
_HEADER_LEN: Final = len(MAGIC) + 8
_JSON_ATTR: Final = "batchwire.json"

# Kinds of plan steps.
_JSON: Final = 0  # the field holds JSON text
_RECORD: Final = 1  # the field holds a record (maybe nullable) with JSON somewhere inside
_ARRAY: Final = 2  # the field holds an array of such records
_MAP: Final = 3  # the field holds a map of such records

# A plan: for each field of a record that holds JSON somewhere, (name, kind, sub-plan);
# the sub-plan of a _JSON step is empty.
_Plan = tuple[tuple[str, int, "_Plan"], ...]

_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_JSON_DECODE = json.JSONDecoder().decode
_JSON_ENCODE_FINITE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent; one past a float's range (`1e999`) is
    refused: Python would read it as infinity, which no JSON text can carry on."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


_JSON_DECODE_STRICT = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite_float
).decode


def loads_strict(text: str) -> Any:
    """JSON from outside (a submission, a target's answer) as RFC 8259 has it: `NaN` and
    `Infinity` are refused (most JSON parsers refuse them in what batchwire would echo).
    Raises `json.JSONDecodeError` for bad syntax, another ValueError for such a constant or
    an integer too long to convert (Python's 4,300 digits), RecursionError when nested too
    deeply."""
    return _JSON_DECODE_STRICT(text)


@dataclass(slots=True)
class JsonText:
    """A value of a JSON field already written as JSON text: `encode` stores `text` as it
    is, without parsing and writing it again (an action's output is checked by writing it)."""

    text: str

    @property
    def value(self) -> Any:
        return _JSON_DECODE(self.text)


def json_text(value: Any) -> JsonText:
    """`value` as a JSON field stores it; ValueError for NaN or infinity, TypeError for what
    JSON cannot hold."""
    return JsonText(_JSON_ENCODE_FINITE(value))


@dataclass(frozen=True, slots=True)
class _Schema:
    name: str
    raw: Mapping[str, Any]  # as its file has it
    parsed: Any
    fingerprint: bytes
    header: bytes
    plan: _Plan
    required: tuple[str, ...]
    write: Writer
    read: Reader


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _compile_plan(schema: Mapping[str, Any], named: dict[str, _Plan]) -> _Plan:
    """The JSON plan of one record schema (raw JSON form, named types inlined)."""
    namespace = schema.get("namespace")
    steps: list[tuple[str, int, _Plan]] = []
    for field in schema["fields"]:
        if field.get(_JSON_ATTR):
            if field["type"] != ["null", "string"]:
                raise CodecError(
                    f"schema {schema['name']}: JSON field {field['name']!r} "
                    'must have type ["null", "string"]'
                )
            steps.append((field["name"], _JSON, ()))
            continue
        step = _type_step(field["type"], named, namespace)
        if step is not None:
            steps.append((field["name"], *step))
    return tuple(steps)


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _type_step(
    typ: Any, named: dict[str, _Plan], namespace: str | None
) -> tuple[int, _Plan] | None:
    """How to reach JSON inside a value of Avro type ``typ``; None when there is none."""
    if isinstance(typ, str):
        plan = named.get(_full_name(typ, namespace)) or named.get(typ)
        return (_RECORD, plan) if plan else None
    if isinstance(typ, list):  # a union: at most one branch may hold JSON
        steps = [s for s in (_type_step(t, named, namespace) for t in typ) if s is not None]
        if len(steps) > 1:
            raise CodecError(f"unsupported: several union branches hold JSON in {typ!r}")
        return steps[0] if steps else None
    kind = typ.get("type")
    if kind == "record":
        ns = typ.get("namespace", namespace)
        plan = _compile_plan({**typ, "namespace": ns}, named)
        named[_full_name(typ["name"], ns)] = plan
        return (_RECORD, plan) if plan else None
    if kind in ("array", "map"):
        inner = _type_step(typ["items" if kind == "array" else "values"], named, namespace)
        if inner is None:
            return None
        if inner[0] != _RECORD:
            raise CodecError(f"unsupported: JSON inside nested containers in {typ!r}")
        return (_ARRAY if kind == "array" else _MAP, inner[1])
    return None


def _load_schema(path: Path) -> _Schema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw, named_schemas={})
        canonical = to_parsing_canonical_form(parsed)
    except Exception as exc:
        raise CodecError(f"cannot load Avro schema {path}: {exc}") from exc
    if raw.get("name") != path.stem:
        raise CodecError(f"schema file {path} defines {raw.get('name')!r}, not {path.stem!r}")
    # fastavro gives the CRC-64-AVRO fingerprint as the hex of its little-endian bytes,
    # the byte order the single-object encoding uses.
    fp = bytes.fromhex(_avro_fingerprint(canonical, "CRC-64-AVRO"))
    required = tuple(f["name"] for f in raw["fields"] if "default" not in f)
    return _Schema(
        path.stem,
        raw,
        parsed,
        fp,
        MAGIC + fp,
        _compile_plan(raw, {}),
        required,
        compile_writer(parsed),
        compile_reader(parsed),
    )


def _load_all() -> tuple[dict[str, _Schema], dict[bytes, _Schema]]:
    by_name: dict[str, _Schema] = {}
    for name in SCHEMA_NAMES:
        path = SCHEMAS_DIR / f"{name}.avsc"
        if not path.is_file():
            raise CodecError(f"missing Avro schema {path}")
        by_name[name] = _load_schema(path)
    by_fp: dict[bytes, _Schema] = {}
    for s in by_name.values():
        if s.fingerprint in by_fp:
            raise CodecError(
                f"schemas {by_fp[s.fingerprint].name} and {s.name} share a fingerprint"
            )
        by_fp[s.fingerprint] = s
    return by_name, by_fp


_BY_NAME, _BY_FINGERPRINT = _load_all()


def fingerprint(schema: str) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of a top-level schema."""
    return _schema(schema).fingerprint


def header(schema: str) -> bytes:
    """The first bytes of every single-object message of a top-level schema: the marker
    and the schema's fingerprint."""
    return _schema(schema).header


def _schema(name: str) -> _Schema:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise CodecError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}") from None


# --------------------------------------------------------------------------------------
# JSON fields
# --------------------------------------------------------------------------------------


def _to_avro(record: Mapping[str, Any], plan: _Plan) -> dict[str, Any]:
    """A shallow copy of ``record`` with its JSON values turned into JSON text.

    Raises CodecError naming the field when a value does not fit.
    """
    if type(record) is not dict and not isinstance(record, Mapping):
        raise CodecError(f"expected a record (a mapping), got {type(record).__name__}")
    out = dict(record)
    for name, kind, sub in plan:
        value = out.get(name)
        if value is None:
            continue
        try:
            if kind == _JSON:
                out[name] = value.text if type(value) is JsonText else _JSON_ENCODE(value)
            elif kind == _RECORD:
                out[name] = _to_avro(value, sub)
            elif kind == _ARRAY:
                out[name] = [None if v is None else _to_avro(v, sub) for v in value]
            else:
                out[name] = {k: None if v is None else _to_avro(v, sub) for k, v in value.items()}
        except CodecError as exc:
            raise CodecError(f"field {name}: {exc}") from exc
        except (TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise CodecError(f"field {name}: {_short(exc)}") from exc
    return out


def _from_avro(record: dict[str, Any], plan: _Plan, read: Callable[[str], Any]) -> None:
    """Turn, in place, the JSON text of a freshly decoded record into `read(text)`."""
    for name, kind, sub in plan:
        value = record.get(name)
        if value is None:
            continue
        if kind == _JSON:
            record[name] = read(value)
        elif kind == _RECORD:
            _from_avro(value, sub, read)
        elif kind == _ARRAY:
            for v in value:
                if v is not None:
                    _from_avro(v, sub, read)
        else:
            for v in value.values():
                if v is not None:
                    _from_avro(v, sub, read)


# --------------------------------------------------------------------------------------
# Encode / decode
# --------------------------------------------------------------------------------------


def _short(exc: BaseException, limit: int = 300) -> str:
    """An exception's message, cut short: fastavro may quote a whole (large) datum."""
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "…"


def encode(schema: str, datum: Mapping[str, Any]) -> bytes:
    """Encode ``datum`` as an Avro single-object message of ``schema``.

    Absent optional fields take their schema defaults; ``datum`` is not modified.
    """
    s = _schema(schema)
    if not isinstance(datum, Mapping):
        raise CodecError(f"cannot encode {schema}: expected a mapping, got {type(datum).__name__}")
    try:
        record = _to_avro(datum, s.plan)
    except CodecError as exc:
        raise CodecError(f"cannot encode {schema}: {exc}") from exc
    out = bytearray(s.header)
    try:
        _write_record(s.write, s.parsed, record, out)
    except Exception as exc:
        missing = [f for f in s.required if datum.get(f) is None]
        why = f"missing required field(s) {', '.join(missing)}" if missing else _short(exc)
        raise CodecError(f"cannot encode {schema}: {why}") from exc
    return bytes(out)


def _write_record(write: Writer, parsed: Any, record: dict[str, Any], out: bytearray) -> None:
    """Append `record`'s Avro bytes to `out` with the compiled writer or, when the record is
    not plainly of the schema (see streams.avro_compiled), with fastavro, which raises for
    what it does not accept."""
    mark = len(out)
    try:
        write(out, record)
        return
    except Exception:
        del out[mark:]
    fo = BytesIO()
    schemaless_writer(fo, parsed, record)
    out += fo.getvalue()


class FieldRun:
    """Consecutive fields of a top-level record schema, encoded on their own.

    Avro writes a record as its fields' encodings one after the other, with nothing between
    them, so a message can be put together from runs encoded at different times: the
    ledger keeps each item's run of its `ItemRequested` and releases the item by
    concatenating it with its part's runs (`streams.ledger_pieces`)."""

    def __init__(self, schema: str, first: str, last: str) -> None:
        raw = _schema(schema).raw
        names = [field["name"] for field in raw["fields"]]
        run = {
            "type": "record",
            "name": f"{schema}_{first}_to_{last}",
            "namespace": raw.get("namespace"),
            "fields": raw["fields"][names.index(first) : names.index(last) + 1],
        }
        self.name = f"{schema} fields {first} to {last}"
        self._parsed = parse_schema(run, named_schemas={})
        self._plan = _compile_plan(run, {})
        self._write = compile_writer(self._parsed)

    def encode(self, datum: Mapping[str, Any]) -> bytes:
        """The run's bytes for the fields of `datum` (the others are not read)."""
        try:
            record = _to_avro(datum, self._plan)
            out = bytearray()
            _write_record(self._write, self._parsed, record, out)
        except CodecError as exc:
            raise CodecError(f"cannot encode {self.name}: {exc}") from exc
        except Exception as exc:
            raise CodecError(f"cannot encode {self.name}: {_short(exc)}") from exc
        return bytes(out)


def _decode(
    data: bytes, expected: _Schema | None, read_json: Callable[[str], Any] = _JSON_DECODE
) -> tuple[_Schema, dict[str, Any]]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"cannot decode {type(data).__name__}: expected bytes")
    data = bytes(data)
    if len(data) < _HEADER_LEN or data[:2] != MAGIC:
        raise CodecError(
            f"not an Avro single-object message: starts with {data[:_HEADER_LEN].hex(' ')!r}, "
            f"expected c3 01 and an 8-byte fingerprint"
        )
    fp = data[2:_HEADER_LEN]
    s = _BY_FINGERPRINT.get(fp)
    if s is None:
        raise UnknownSchemaError(
            f"unknown Avro schema fingerprint {fp.hex()} (CRC-64-AVRO, little-endian); "
            f"known: {', '.join(f'{n}={x.fingerprint.hex()}' for n, x in _BY_NAME.items())}"
        )
    if expected is not None and s is not expected:
        raise CodecError(f"expected a {expected.name} message, got {s.name}")
    record = _read_compiled(s, data)
    if record is None:
        record = _read_fastavro(s, data)
    try:
        _from_avro(record, s.plan, read_json)
    except (ValueError, RecursionError) as exc:
        raise CodecError(
            f"corrupt {s.name} message: a JSON field is not JSON: {_short(exc)}"
        ) from exc
    return s, record


def _read_compiled(s: _Schema, data: bytes) -> dict[str, Any] | None:
    """The datum, or None when the bytes are not plainly well formed (fastavro decides)."""
    try:
        record, end = s.read(data, _HEADER_LEN)
    except Exception:
        return None
    return record if end == len(data) else None


def _read_fastavro(s: _Schema, data: bytes) -> dict[str, Any]:
    fo = BytesIO(data)
    fo.seek(_HEADER_LEN)
    try:
        record = schemaless_reader(fo, s.parsed, None)
    except Exception as exc:
        raise CodecError(
            f"corrupt or truncated {s.name} message ({len(data)} bytes): "
            f"{type(exc).__name__}: {_short(exc)}"
        ) from exc
    if fo.tell() != len(data):
        raise CodecError(
            f"corrupt {s.name} message: {len(data) - fo.tell()} byte(s) after the datum"
        )
    if not isinstance(record, dict):
        raise CodecError(f"corrupt {s.name} message: the datum is not a record")
    return record


def decode(data: bytes) -> tuple[str, dict[str, Any]]:
    """Decode a single-object message: (schema name, datum)."""
    s, record = _decode(data, None)
    return s.name, record


def decode_as(schema: str, data: bytes, *, parse_json: bool = True) -> dict[str, Any]:
    """Decode a single-object message that must be of ``schema``.

    With ``parse_json=False`` its JSON fields come back unparsed, as `JsonText` (which
    `encode` writes back as it is), for a reader that does not look into them."""
    return _decode(data, _schema(schema), _JSON_DECODE if parse_json else JsonText)[1]


_JSON_CONTENT_TYPES: Final = frozenset({"application/json", "text/json"})
_WHITESPACE: Final = b" \t\r\n"


def _is_json(data: bytes, content_type: str | None) -> bool:
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media in _JSON_CONTENT_TYPES or media.endswith("+json"):
            return True
    if data[:2] == MAGIC:
        return False
    stripped = data.lstrip(_WHITESPACE)
    if stripped[:3] == b"\xef\xbb\xbf":  # a BOM, then maybe blanks: JSON as with the header
        stripped = stripped[3:].lstrip(_WHITESPACE)
    return stripped[:1] == b"{"


def _position(text: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset."""
    line = text.count(b"\n", 0, offset) + 1
    return line, offset - text.rfind(b"\n", 0, offset)


def decode_submission(data: bytes, content_type: str | None = None) -> dict[str, Any]:
    """A BatchSubmitted, sent as Avro single-object encoding or as plain JSON.

    JSON is taken when ``content_type`` says so or the first non-blank byte is ``{``; it is
    parsed (UTF-8, an optional BOM) and returned as it is, unvalidated.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"cannot decode {type(data).__name__}: expected bytes")
    data = bytes(data)
    if not _is_json(data, content_type):
        # its JSON fields come from outside too: as strict as a JSON submission
        return _decode(data, _schema("BatchSubmitted"), loads_strict)[1]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        raise CodecError(
            f"invalid JSON: not UTF-8 at line {line}, column {col} (byte {exc.start})"
        ) from exc
    try:
        value = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise CodecError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except ValueError as exc:
        raise CodecError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise CodecError("invalid JSON: nested too deeply") from exc
    if not isinstance(value, dict):
        raise CodecError(f"invalid JSON submission: a {type(value).__name__}, not an object")
    return value


# --------------------------------------------------------------------------------------
# Faust
# --------------------------------------------------------------------------------------


class AvroCodec(faust_codecs.Codec):
    """A Faust codec for one schema: ``dumps`` encodes a mapping, ``loads`` gives a dict."""

    def __init__(self, schema: str, children: tuple[Any, ...] | None = None, **kwargs: Any) -> None:
        _schema(schema)  # fail early on a wrong name
        super().__init__(children=children, schema=schema, **kwargs)
        self.schema = schema

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, Mapping) and hasattr(obj, "to_representation"):
            obj = obj.to_representation()
        return encode(self.schema, obj)

    def _loads(self, s: bytes) -> Any:
        return decode_as(self.schema, s)


def register_codecs() -> None:
    """Register ``avro-<Name>`` Faust codecs for every top-level schema (idempotent)."""
    for name in SCHEMA_NAMES:
        key = f"avro-{name}"
        current = faust_codecs.codecs.get(key)
        if not (isinstance(current, AvroCodec) and current.schema == name):
            faust_codecs.register(key, AvroCodec(name))
