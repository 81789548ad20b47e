"""An item's result always becomes a message (`streams.agents.process.encoded_result`)."""

from __future__ import annotations

from typing import Any

import pytest

from streams import codec
from streams.agents.process import MAX_RESULT_BYTES, encoded_result
from streams.aggregation import ITEM_ERROR_CHARS
from streams.messages import item_result

REQUEST: dict[str, Any] = {
    "batch_id": "b-1",
    "tenant": "acme",
    "item_id": "i-1",
    "index": 0,
    "group": None,
    "request": {"id": "i-1", "namespace": "batchwire", "action": "echo", "params": {"n": 1}},
}


def result(**fields: Any) -> dict[str, Any]:
    return item_result(REQUEST, status="succeeded", attempts=1, **fields)


def test_a_result_that_fits_is_kept_as_it_is() -> None:
    kept, raw = encoded_result(result(output={"n": 1}, code=200))
    assert kept["status"] == "succeeded"
    assert codec.decode_as("ItemResult", raw)["output"] == {"n": 1}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"output": "x" * MAX_RESULT_BYTES}, "the result took "),
        ({"output": "\ud800"}, "the result could not be stored: "),
        ({"code": 2**40}, "the result could not be stored: "),
        ({"errors": ["\udc00 " + "e" * 20_000]}, "the result could not be stored: "),
    ],
)
def test_a_result_no_message_can_hold_fails_without_its_output(
    fields: dict[str, Any], why: str
) -> None:
    failed, raw = encoded_result(result(**fields))
    decoded = codec.decode_as("ItemResult", raw)
    assert decoded["status"] == failed["status"] == "failed"
    assert decoded["success"] is False
    assert decoded["output"] is None and decoded["code"] is None
    assert decoded["errors"][0].startswith(why)
    assert len(decoded["errors"]) == 1 and len(decoded["errors"][0]) <= ITEM_ERROR_CHARS
    assert (
        decoded["request"] == codec.decode_as("ItemResult", encoded_result(result())[1])["request"]
    )  # the item itself is kept
