"""The compiled Avro writers and readers give fastavro's bytes and values, or step aside."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import codec
from streams.avro_compiled import Unfit, compile_reader, compile_writer

SCHEMAS = {name: codec._schema(name).parsed for name in codec.SCHEMA_NAMES}
_SMALL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def datums(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the Avro type `schema` (a parsed schema), as fastavro writes them."""
    if isinstance(schema, str):
        simple = {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "double": st.floats(allow_nan=False),
            "string": st.text(max_size=20),
            "bytes": st.binary(max_size=20),
        }
        return simple[schema] if schema in simple else datums(named[schema], named)
    if isinstance(schema, list):
        return st.one_of(*(datums(branch, named) for branch in schema))
    kind = schema["type"]
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: datums(f["type"], named) for f in schema["fields"]}
        )
    if kind == "array":
        return st.lists(datums(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), datums(schema["values"], named), max_size=3)
    return datums(kind, named)


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    out = BytesIO()
    schemaless_writer(out, schema, datum)
    return out.getvalue()


def assert_as_fastavro(schema: Any, datum: Any) -> None:
    """The compiled writer writes fastavro's bytes; the compiled reader reads them back as
    fastavro does."""
    expected = fastavro_bytes(schema, datum)
    out = bytearray()
    compile_writer(schema)(out, datum)
    assert bytes(out) == expected
    value, end = compile_reader(schema)(expected, 0)
    assert end == len(expected)
    assert value == schemaless_reader(BytesIO(expected), schema, None)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@_SMALL
@given(data=st.data())
def test_same_bytes_and_values_as_fastavro(name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[name]
    datum = data.draw(datums(schema, schema["__named_schemas"]))
    assert_as_fastavro(schema, datum)


@_SMALL
@given(raw=st.binary(max_size=200))
def test_bytes_it_accepts_read_as_fastavro_reads_them(raw: bytes) -> None:
    schema = SCHEMAS["ItemResult"]
    try:
        value, end = compile_reader(schema)(raw, 0)
    except (Unfit, IndexError, ValueError):
        return  # not plainly well formed: the codec hands these to fastavro
    reader = BytesIO(raw)
    assert value == schemaless_reader(reader, schema, None)
    assert end == reader.tell()


@pytest.mark.parametrize(
    "bad",
    [
        {"index": True},  # a bool where a long goes
        {"index": 2**63},  # out of range
        {"errors": ("a", "b")},  # a tuple where an array goes
        {"status": "\ud800"},  # a lone surrogate
        {"headers": {1: "x"}},  # a map key that is not a string
    ],
)
def test_unfit_values_are_left_to_fastavro(bad: dict[str, Any]) -> None:
    write = compile_writer(SCHEMAS["ItemResult"])
    good = {
        "batch_id": "b",
        "tenant": "t",
        "item_id": "i",
        "index": 0,
        "success": True,
        "status": "succeeded",
        "attempts": 1,
        "request": {"id": "i", "index": 0},
    }
    out = bytearray()
    write(out, good)
    assert bytes(out) == fastavro_bytes(SCHEMAS["ItemResult"], good)
    with pytest.raises(Unfit):
        write(bytearray(), {**good, **bad})


def test_a_missing_field_without_default_is_unfit() -> None:
    with pytest.raises(Unfit):
        compile_writer(SCHEMAS["ItemResult"])(bytearray(), {"batch_id": "b"})


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 127, 128, 300, 20_000])
@pytest.mark.parametrize("number", [0, -1, 63, 64, -64, -65, 8191, 8192, 2**31 - 1, -(2**63)])
def test_lengths_and_numbers_around_the_one_byte_fast_path(length: int, number: int) -> None:
    schema = SCHEMAS["ItemResult"]
    datum = {
        "batch_id": "b" * length,
        "tenant": "é" * (length // 2),
        "item_id": "i",
        "index": number,
        "success": False,
        "status": "failed",
        "code": number if -(2**31) <= number < 2**31 else None,
        "headers": {"k" * length: "v"},
        "errors": ["x" * length],
        "attempts": abs(number) % 2**31,
        "request": {"id": "i", "stage": number % 2**31},
    }
    assert_as_fastavro(schema, datum)
