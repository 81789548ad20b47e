"""`POST /v1/batch`'s translation between its request array and the internal batch."""

from __future__ import annotations

from typing import Any

from streams.api.sync_batch import answer_of, inherited_headers, request_path, to_items


def test_detail_paths_name_the_request_fields() -> None:
    assert request_path("$.items[3].group") == "$[3].transaction"
    assert request_path("$.items[0].headers['X']") == "$[0].headers['X']"
    assert request_path("$.items[12]") == "$[12]"
    assert request_path("$.headers") == "$.headers"


def test_headers_named_by_connection_are_not_inherited() -> None:
    pairs = [
        ("Connection", "keep-alive, X-Hop"),
        ("connection", "x-other"),
        ("X-Hop", "1"),
        ("X-Other", "2"),
        ("X-Trace", "t"),
        ("Authorization", "Bearer k"),
        ("Transfer-Encoding", "chunked"),
    ]
    assert inherited_headers(pairs) == {"X-Trace": "t"}


def test_answers_keep_the_id_type_the_request_gave() -> None:
    items = to_items([{"id": 7, "method": "GET", "path": "/a"}, {"method": "GET", "path": "/b"}])
    given = {str(item["id"]): item["id"] for item in items if "id" in item}
    result: dict[str, Any] = {
        "code": 200, "status": "succeeded", "output": {"ok": True}, "errors": [], "headers": {},
    }  # fmt: skip
    assert answer_of({**result, "item_id": "7"}, given)["id"] == 7
    assert answer_of({**result, "item_id": "1"}, given)["id"] == "1"  # the default id, a string
