"""Avro binary writers and readers compiled once per schema into plain Python functions.

fastavro's `schemaless_writer`/`schemaless_reader` cost a fixed 5-10 µs per call before
they touch the datum (schema lookup, option dicts, stream objects), and the codec runs four
times per item, so the hot path uses these instead: a record's reader or writer is one
generated function (see "generated code" below), arrays and maps small closures.  They
cover the subset of Avro the batchwire schemas use: null, boolean, int, long, double,
bytes, string, record, array, map and unions of null with one other type.

They are strict on purpose: a writer raises `Unfit` for any value that is not exactly of
its type (a bool for a long, a tuple for an array, a missing field without a default...)
and a reader raises `Unfit` for anything short of well-formed input.  `streams.codec` then
falls back to fastavro, which encodes what it accepts and words the error for what it
does not, so both paths give the same bytes and the same errors (a property test checks the
bytes against fastavro's).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

Writer = Callable[[bytearray, Any], None]
Reader = Callable[[bytes, int], tuple[Any, int]]

_DOUBLE = struct.Struct("<d")
_INT_RANGE = (-(2**31), 2**31)
_LONG_RANGE = (-(2**63), 2**63)
_NO_DEFAULT = object()


class Unfit(Exception):
    """The value (or the bytes) is not plainly of the schema: let fastavro decide."""


# ---------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------


def _write_varint(out: bytearray, value: int) -> None:
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_double(out: bytearray, value: Any) -> None:
    if type(value) is not float and type(value) is not int:
        raise Unfit
    out += _DOUBLE.pack(value)


def _write_string(out: bytearray, value: Any) -> None:
    if type(value) is not str:
        raise Unfit
    try:
        data = value.encode()
    except UnicodeEncodeError:  # lone surrogates
        raise Unfit from None
    _write_varint(out, len(data))
    out += data


def _array_writer(items: Writer) -> Writer:
    def write(out: bytearray, value: Any) -> None:
        if type(value) is not list:
            raise Unfit
        if value:
            _write_varint(out, len(value))
            for item in value:
                items(out, item)
        out.append(0)

    return write


def _map_writer(values: Writer) -> Writer:
    def write(out: bytearray, value: Any) -> None:
        if type(value) is not dict:
            raise Unfit
        if value:
            _write_varint(out, len(value))
            for key, item in value.items():
                _write_string(out, key)
                values(out, item)
        out.append(0)

    return write


# ---------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:  # most lengths and counts fit in one byte
        return (byte >> 1) ^ -(byte & 1), pos + 1
    pos += 1
    n = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if shift > 70:
            raise Unfit
    return (n >> 1) ^ -(n & 1), pos


def _read_double(data: bytes, pos: int) -> tuple[Any, int]:
    return _DOUBLE.unpack_from(data, pos)[0], pos + 8


def _read_string(data: bytes, pos: int) -> tuple[Any, int]:
    size, pos = _read_varint(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise Unfit
    try:
        return data[pos:end].decode(), end
    except UnicodeDecodeError:
        raise Unfit from None


def _block_count(data: bytes, pos: int) -> tuple[int, int]:
    """The item count of the next block (a negative count is followed by a byte size)."""
    count, pos = _read_varint(data, pos)
    if count < 0:
        count = -count
        _, pos = _read_varint(data, pos)
    return count, pos


def _array_reader(items: Reader) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        out = []
        count, pos = _block_count(data, pos)
        while count:
            for _ in range(count):
                item, pos = items(data, pos)
                out.append(item)
            count, pos = _block_count(data, pos)
        return out, pos

    return read


def _map_reader(values: Reader) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        out = {}
        count, pos = _block_count(data, pos)
        while count:
            for _ in range(count):
                key, pos = _read_string(data, pos)
                out[key], pos = values(data, pos)
            count, pos = _block_count(data, pos)
        return out, pos

    return read


def _named_types(schema: Any, named: dict[str, Any] | None) -> dict[str, Any]:
    if named is not None:
        return named
    return dict(schema.get("__named_schemas", {})) if isinstance(schema, dict) else {}


def _is_nullable(schema: Any) -> bool:
    return isinstance(schema, list) and "null" in schema


def _non_null_branch(union: list[Any]) -> Any:
    if len(union) != 2 or union[0] != "null":
        raise ValueError(f"only unions of null and one type are compiled, not {union!r}")
    return union[1]


# ---------------------------------------------------------------------------------------
# records, unions and primitives as generated code
# ---------------------------------------------------------------------------------------
#
# A record's reader and writer are each one generated Python function with every field
# inlined (nested records and null unions included) and a one-byte fast path for varints:
# a closure per field cost a call and a tuple per field, and the codec runs four times per
# item. Arrays and maps call the closures above, which call generated code for their items.

_INDENT = "    "
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "double", "string", "bytes"})


class _Source:
    """The lines of one generated function and the constants they name."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {"Unfit": Unfit, "_NO_DEFAULT": _NO_DEFAULT}
        self._names = 0

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def constant(self, value: Any) -> str:
        name = self.name("k")
        self.constants[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append(_INDENT * depth + line)

    def resolve(self, schema: Any) -> Any:
        """A named type's definition; a primitive's name or an inline type as it is."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named[schema]
        return schema

    def function(self, signature: str, body: list[str], result: str) -> Any:
        text = "\n".join(
            [
                f"def {signature}:",
                *body,
                f"{_INDENT}return {result}",
            ]
        )
        namespace = dict(self.constants)
        exec(compile(text, f"<avro {signature}>", "exec"), namespace)
        return namespace[signature.split("(")[0]]


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return str(schema["type"])


def _emit_read_varint(src: _Source, depth: int, var: str) -> None:
    src.emit(depth, "b = data[pos]")
    src.emit(depth, "if b < 0x80:")
    src.emit(depth + 1, f"{var} = (b >> 1) ^ -(b & 1)")
    src.emit(depth + 1, "pos += 1")
    src.emit(depth, "else:")
    src.emit(depth + 1, f"{var}, pos = _read_varint(data, pos)")


def _emit_read(src: _Source, schema: Any, depth: int, var: str) -> None:
    """Lines that read a value of `schema` at `pos` into `var` and move `pos` past it."""
    schema = src.resolve(schema)
    kind = _kind(schema)
    if kind == "null":
        src.emit(depth, f"{var} = None")
    elif kind == "boolean":
        src.emit(depth, "b = data[pos]")
        src.emit(depth, "if b > 1:")
        src.emit(depth + 1, "raise Unfit")
        src.emit(depth, f"{var} = b == 1")
        src.emit(depth, "pos += 1")
    elif kind in ("int", "long"):
        low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
        _emit_read_varint(src, depth, var)
        src.emit(depth + 1, f"if not {low} <= {var} < {high}:")
        src.emit(depth + 2, "raise Unfit")
    elif kind in ("string", "bytes"):
        _emit_read_varint(src, depth, "n")
        src.emit(depth, "end = pos + n")
        src.emit(depth, "if n < 0 or end > size:")
        src.emit(depth + 1, "raise Unfit")
        src.emit(depth, f"{var} = data[pos:end]" + (".decode()" if kind == "string" else ""))
        src.emit(depth, "pos = end")
    elif kind == "union":
        src.emit(depth, "b = data[pos]")
        src.emit(depth, "pos += 1")
        src.emit(depth, "if b == 0:")
        src.emit(depth + 1, f"{var} = None")
        src.emit(depth, "elif b == 2:")  # branch 1, zig-zag encoded
        _emit_read(src, _non_null_branch(schema), depth + 1, var)
        src.emit(depth, "else:")
        src.emit(depth + 1, "raise Unfit")
    elif kind == "record":
        names = []
        for field in schema["fields"]:
            field_var = src.name("v")
            _emit_read(src, field["type"], depth, field_var)
            names.append(f"{field['name']!r}: {field_var}")
        src.emit(depth, f"{var} = {{{', '.join(names)}}}")
    else:  # double, array, map: a call
        reader = src.constant(_call_reader(schema, src.named))
        src.emit(depth, f"{var}, pos = {reader}(data, pos)")


def _call_reader(schema: Any, named: dict[str, Any]) -> Reader:
    kind = _kind(schema)
    if kind == "array":
        return _array_reader(compile_reader(schema["items"], named))
    if kind == "map":
        return _map_reader(compile_reader(schema["values"], named))
    if kind == "double":
        return _read_double
    raise ValueError(f"no compiled reader for Avro type {kind!r}")


def compile_reader(schema: Any, named: dict[str, Any] | None = None) -> Reader:
    """A reader for a schema parsed by fastavro's `parse_schema` (whose `__named_schemas`
    resolve the named types it refers to by name)."""
    src = _Source(_named_types(schema, named))
    src.constants["_read_varint"] = _read_varint
    _emit_read(src, schema, 2, "value")
    body = [
        f"{_INDENT}size = len(data)",
        f"{_INDENT}try:",
        *src.lines,
        f"{_INDENT}except UnicodeDecodeError:",
        f"{_INDENT * 2}raise Unfit from None",
    ]
    return src.function("read(data, pos)", body, "value, pos")


def _emit_write_length(src: _Source, depth: int, var: str) -> None:
    """A non-negative int: zig-zag is `n << 1`, one byte below 64."""
    src.emit(depth, f"if {var} < 64:")
    src.emit(depth + 1, f"out.append({var} << 1)")
    src.emit(depth, "else:")
    src.emit(depth + 1, f"_write_varint(out, {var})")


def _emit_write(src: _Source, schema: Any, depth: int, var: str) -> None:
    """Lines that check `var` is of `schema` (else raise Unfit) and append its bytes."""
    schema = src.resolve(schema)
    kind = _kind(schema)
    if kind == "null":
        src.emit(depth, f"if {var} is not None:")
        src.emit(depth + 1, "raise Unfit")
    elif kind == "boolean":
        src.emit(depth, f"if type({var}) is not bool:")
        src.emit(depth + 1, "raise Unfit")
        src.emit(depth, f"out.append(1 if {var} else 0)")
    elif kind in ("int", "long"):
        low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
        src.emit(depth, f"if type({var}) is not int or not {low} <= {var} < {high}:")
        src.emit(depth + 1, "raise Unfit")
        src.emit(depth, f"if 0 <= {var} < 64:")
        src.emit(depth + 1, f"out.append({var} << 1)")
        src.emit(depth, "else:")
        src.emit(depth + 1, f"_write_varint(out, {var})")
    elif kind in ("string", "bytes"):
        src.emit(depth, f"if type({var}) is not {'str' if kind == 'string' else 'bytes'}:")
        src.emit(depth + 1, "raise Unfit")
        data = src.name("d")
        src.emit(depth, f"{data} = {var}" + (".encode()" if kind == "string" else ""))
        src.emit(depth, f"n = len({data})")
        _emit_write_length(src, depth, "n")
        src.emit(depth, f"out += {data}")
    elif kind == "union":
        src.emit(depth, f"if {var} is None:")
        src.emit(depth + 1, "out.append(0)")
        src.emit(depth, "else:")
        src.emit(depth + 1, "out.append(2)")  # branch 1, zig-zag encoded
        _emit_write(src, _non_null_branch(schema), depth + 1, var)
    elif kind == "record":
        src.emit(depth, f"if type({var}) is not dict:")
        src.emit(depth + 1, "raise Unfit")
        get = src.name("g")
        src.emit(depth, f"{get} = {var}.get")
        for field in schema["fields"]:
            default = field.get("default", _NO_DEFAULT)
            if default is _NO_DEFAULT and _is_nullable(field["type"]):
                default = None
            field_var = src.name("f")
            if default is None:
                src.emit(depth, f"{field_var} = {get}({field['name']!r})")
            else:
                src.emit(depth, f"{field_var} = {get}({field['name']!r}, {src.constant(default)})")
                if default is _NO_DEFAULT:
                    src.emit(depth, f"if {field_var} is _NO_DEFAULT:")
                    src.emit(depth + 1, "raise Unfit")
            _emit_write(src, field["type"], depth, field_var)
    else:  # double, array, map: a call
        writer = src.constant(_call_writer(schema, src.named))
        src.emit(depth, f"{writer}(out, {var})")


def _call_writer(schema: Any, named: dict[str, Any]) -> Writer:
    kind = _kind(schema)
    if kind == "array":
        return _array_writer(compile_writer(schema["items"], named))
    if kind == "map":
        return _map_writer(compile_writer(schema["values"], named))
    if kind == "double":
        return _write_double
    raise ValueError(f"no compiled writer for Avro type {kind!r}")


def compile_writer(schema: Any, named: dict[str, Any] | None = None) -> Writer:
    """A writer for a schema parsed by fastavro's `parse_schema` (see `compile_reader`)."""
    src = _Source(_named_types(schema, named))
    src.constants["_write_varint"] = _write_varint
    _emit_write(src, schema, 2, "value")
    body = [
        f"{_INDENT}try:",
        *src.lines,
        f"{_INDENT}except UnicodeEncodeError:",  # a lone surrogate
        f"{_INDENT * 2}raise Unfit from None",
    ]
    return src.function("write(out, value)", body, "None")
