"""Validation and normalisation of one `BatchSubmitted` part (streams/validation.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import types
from typing import Any

import pytest

from streams.errors import SubmissionError
from streams.validation import (
    ITEM_FIELDS,
    MAX_METADATA_CHARS,
    Submission,
    _checked_item,
    _plain_item,
    _Problems,
    content_hash,
    validate_submission,
)

ALLOWED = frozenset({"acme", "globex"})


def http(**fields: Any) -> dict[str, Any]:
    return {"method": "GET", "path": "/v1/things", **fields}


def act(**fields: Any) -> dict[str, Any]:
    return {"namespace": "crm", "action": "create", "params": {"name": "x"}, **fields}


def batch(items: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"batch_id": "b1", "tenant": "acme", "items": items or [http()]}
    raw.update(fields)
    return raw


def validate(raw: Any, **kwargs: Any) -> Submission:
    kwargs.setdefault("allowed_tenants", ALLOWED)
    kwargs.setdefault("max_items", 1000)
    return validate_submission(raw, **kwargs)


def reject(raw: Any, code: str, **kwargs: Any) -> SubmissionError:
    with pytest.raises(SubmissionError) as info:
        validate(raw, **kwargs)
    assert info.value.code == code, info.value.as_error()
    return info.value


def paths(err: SubmissionError) -> list[str]:
    return [d["path"] for d in err.details]


# -- the submission as a whole -------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], "{}", 3, b"{}"])
def test_not_an_object(raw: Any) -> None:
    err = reject(raw, "invalid_batch_format")
    assert paths(err) == ["$"]
    assert err.as_error()["code"] == "invalid_batch_format"


@pytest.mark.parametrize("tenant", [None, "", "   ", 5, ["acme"]])
def test_tenant_missing_or_not_a_string(tenant: Any) -> None:
    raw = batch()
    if tenant is None:
        del raw["tenant"]
    else:
        raw["tenant"] = tenant
    err = reject(raw, "invalid_batch_format")
    assert paths(err) == ["$.tenant"]


def test_tenant_not_allowed() -> None:
    err = reject(batch(tenant="initech"), "tenant_not_allowed")
    assert paths(err) == ["$.tenant"]
    assert err.message.startswith("batch b1 (tenant initech):")


def test_empty_allow_list_allows_no_tenant() -> None:
    reject(batch(), "tenant_not_allowed", allowed_tenants=frozenset())


@pytest.mark.parametrize("batch_id", ["b1", "a" * 128, "Order.2024_01:x-9", "0", "...x"])
def test_batch_id_accepted(batch_id: str) -> None:
    assert validate(batch(batch_id=batch_id)).batch_id == batch_id


@pytest.mark.parametrize(
    "batch_id", ["", "a" * 129, "with space", "a/b", "é", "b1\n", "a?b", 5, ["b1"], ".", ".."]
)
def test_batch_id_rejected(batch_id: Any) -> None:
    err = reject(batch(batch_id=batch_id), "invalid_batch_format")
    assert paths(err) == ["$.batch_id"]
    assert err.message.startswith("submission (tenant acme):")


@pytest.mark.parametrize("absent", ["missing", "null"])
def test_batch_id_generated_when_absent(absent: str) -> None:
    raw = batch()
    if absent == "missing":
        del raw["batch_id"]
    else:
        raw["batch_id"] = None
    assert validate(raw, new_batch_id=lambda: "gen-1").batch_id == "gen-1"
    generated = validate(raw).batch_id
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert validate(raw).batch_id != generated


def test_batch_id_not_generated_for_a_rejected_part() -> None:
    calls: list[int] = []

    def new_id() -> str:
        calls.append(1)
        return "gen"

    raw = batch(items=[http(method="")])
    del raw["batch_id"]
    err = reject(raw, "empty_parameter", new_batch_id=new_id)
    assert calls == []
    assert err.message == "submission (tenant acme): 1 item has an empty parameter"


@pytest.mark.parametrize("items", [None, {}, "[]", 3])
def test_items_missing_or_not_a_list(items: Any) -> None:
    raw = batch()
    if items is None:
        del raw["items"]
    else:
        raw["items"] = items
    assert paths(reject(raw, "invalid_batch_format")) == ["$.items"]


def test_empty_batch() -> None:
    raw = batch()
    raw["items"] = []
    err = reject(raw, "empty_batch")
    assert paths(err) == ["$.items"]
    assert err.message == "batch b1 (tenant acme): the batch has no items"


def test_too_many_items() -> None:
    err = reject(batch([http()] * 4), "too_many_items", max_items=3)
    assert paths(err) == ["$.items"]
    assert "limit of 3" in err.message


@pytest.mark.parametrize(("first_index", "ok"), [(0, True), (7, True), (8, False), (20, False)])
def test_too_many_items_counts_earlier_parts(first_index: int, ok: bool) -> None:
    raw = batch([http(), http(), http()])
    if ok:
        assert len(validate(raw, max_items=10, first_index=first_index).items) == 3
    else:
        reject(raw, "too_many_items", max_items=10, first_index=first_index)


# -- batch-level fields --------------------------------------------------------------------


@pytest.mark.parametrize("style", ["missing", "null"])
def test_batch_defaults(style: str) -> None:
    raw = batch()
    if style == "null":  # as Avro decodes the optional fields
        raw.update(
            headers=None,
            callback=None,
            stop_on_failure=None,
            deadline_s=None,
            metadata=None,
            part=None,
            parts=None,
        )
    sub = validate(raw)
    assert (sub.batch_id, sub.tenant, sub.headers, sub.callback) == ("b1", "acme", {}, None)
    assert sub.stop_on_failure is True
    assert sub.deadline_s == 1800.0 and isinstance(sub.deadline_s, float)
    assert (sub.metadata, sub.part, sub.parts, sub.first_index) == (None, 0, 1, 0)


def test_batch_fields_kept() -> None:
    metadata = {"order": [1, 2, {"x": None}]}
    raw = batch(
        headers={"Authorization": "Bearer t", "X-Trace": "1"},
        callback={"url": "HTTPS://hooks.example.com/b", "mode": "item"},
        stop_on_failure=False,
        deadline_s=604800,
        metadata=metadata,
        part=2,
        parts=3,
    )
    sub = validate(raw, first_index=40)
    assert sub.headers == {"Authorization": "Bearer t", "X-Trace": "1"}
    assert sub.callback == {"url": "HTTPS://hooks.example.com/b", "mode": "item"}
    assert sub.stop_on_failure is False
    assert sub.deadline_s == 604800.0 and isinstance(sub.deadline_s, float)
    assert sub.metadata is metadata
    assert (sub.part, sub.parts, sub.first_index) == (2, 3, 40)


def test_callback_mode_defaults_to_batch() -> None:
    sub = validate(batch(callback={"url": "http://h.example/cb"}))
    assert sub.callback == {"url": "http://h.example/cb", "mode": "batch"}


@pytest.mark.parametrize("metadata", ["text", 3, [1, 2], {"a": {"b": None}}, True])
def test_metadata_is_any_json_value(metadata: Any) -> None:
    assert validate(batch(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("headers", "x", "$.headers"),
        ("headers", ["a"], "$.headers"),
        ("headers", {"a": 1}, "$.headers.a"),
        ("headers", {"X-Trace": None}, "$.headers['X-Trace']"),
        ("callback", "http://h.example", "$.callback"),
        ("callback", {"mode": "batch"}, "$.callback.url"),
        ("callback", {"url": ""}, "$.callback.url"),
        ("callback", {"url": "https://"}, "$.callback.url"),
        ("callback", {"url": "ftp://h.example"}, "$.callback.url"),
        ("callback", {"url": "h.example/cb"}, "$.callback.url"),
        ("callback", {"url": 5}, "$.callback.url"),
        ("callback", {"url": "http://h.example:0/cb"}, "$.callback.url"),
        ("callback", {"url": "https://h.example", "mode": "all"}, "$.callback.mode"),
        ("stop_on_failure", "yes", "$.stop_on_failure"),
        ("stop_on_failure", 1, "$.stop_on_failure"),
        ("deadline_s", 0, "$.deadline_s"),
        ("deadline_s", -5, "$.deadline_s"),
        ("deadline_s", 604800.5, "$.deadline_s"),
        ("deadline_s", 10**400, "$.deadline_s"),
        ("deadline_s", float("nan"), "$.deadline_s"),
        ("deadline_s", float("inf"), "$.deadline_s"),
        ("deadline_s", True, "$.deadline_s"),
        ("deadline_s", "60", "$.deadline_s"),
        ("part", -1, "$.part"),
        ("part", True, "$.part"),
        ("part", 1.0, "$.part"),
        ("parts", 0, "$.parts"),
        ("parts", "2", "$.parts"),
        ("part", 3, "$.part"),  # part must be lower than parts (1)
    ],
)
def test_batch_field_rejected(field: str, value: Any, path: str) -> None:
    err = reject(batch(**{field: value}), "invalid_batch_format")
    assert paths(err) == [path]


def test_batch_fields_all_problems_listed() -> None:
    raw = batch(deadline_s=0, part=5, parts=2, callback={"url": "x", "mode": "x"})
    err = reject(raw, "invalid_batch_format")
    assert paths(err) == ["$.callback.url", "$.callback.mode", "$.deadline_s", "$.part"]
    assert err.message == "batch b1 (tenant acme): the batch format is invalid (4 problems)"


# -- item shapes and types -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ("GET /x", "$.items[0]"),
        (None, "$.items[0]"),
        ([], "$.items[0]"),
        ({}, "$.items[0]"),
        ({"method": "GET"}, "$.items[0]"),
        ({"path": "/x"}, "$.items[0]"),
        ({"method": None, "path": "/x"}, "$.items[0]"),
        ({"namespace": "crm", "action": "create"}, "$.items[0]"),
        ({"namespace": "crm", "params": {}}, "$.items[0]"),
        ({**http(), **act()}, "$.items[0]"),
        (http(method=5), "$.items[0].method"),
        (http(method="FETCH"), "$.items[0].method"),
        (http(method=" GET"), "$.items[0].method"),
        (http(method="po\u017ft"), "$.items[0].method"),  # LONG S: upper() gives "POST"
        (http(path=5), "$.items[0].path"),
        (http(path="v1/things"), "$.items[0].path"),
        (http(path="//evil.example/x"), "$.items[0].path"),
        (http(path="http://evil.example/x"), "$.items[0].path"),
        (http(path="/go?to=https://evil.example"), "$.items[0].path"),
        (http(headers="x"), "$.items[0].headers"),
        (http(headers={"X-A": 1}), "$.items[0].headers['X-A']"),
        (http(headers={"it's": 1}), "$.items[0].headers['it\\'s']"),
        (act(namespace=5), "$.items[0].namespace"),
        (act(action=["create"]), "$.items[0].action"),
        (http(group=5), "$.items[0].group"),
        (act(group=""), "$.items[0].group"),
        (http(stage=-1), "$.items[0].stage"),
        (http(stage=True), "$.items[0].stage"),
        (http(stage="1"), "$.items[0].stage"),
        (http(stage=1.5), "$.items[0].stage"),
        (http(id=True), "$.items[0].id"),
        (http(id=1.5), "$.items[0].id"),
        (http(id=""), "$.items[0].id"),
        (act(id=["a"]), "$.items[0].id"),
    ],
)
def test_item_rejected(item: Any, path: str) -> None:
    err = reject(batch([item]), "invalid_batch_format")
    assert paths(err) == [path]
    # the fast path must refuse what the field-by-field check rejects
    assert _plain_item(item, 0) is None


def test_item_problems_all_listed_with_their_paths() -> None:
    items = [http(), http(method="FETCH"), "x", act(), act(stage=-1, group=3), http(path="x")]
    err = reject(batch(items), "invalid_batch_format")
    assert paths(err) == [
        "$.items[1].method",
        "$.items[2]",
        "$.items[4].group",
        "$.items[4].stage",
        "$.items[5].path",
    ]
    assert err.message == "batch b1 (tenant acme): the batch format is invalid (5 problems)"


@pytest.mark.parametrize(
    ("item", "path"),
    [
        (http(method=""), "$.items[0].method"),
        (http(method="  "), "$.items[0].method"),
        (http(path=""), "$.items[0].path"),
        (http(path=" \t"), "$.items[0].path"),
        (act(namespace=""), "$.items[0].namespace"),
        (act(action=" "), "$.items[0].action"),
        (act(params=None), "$.items[0].params"),
        (act(params=""), "$.items[0].params"),
        (act(params="  "), "$.items[0].params"),
        # a field of the other kind of item, empty
        (http(namespace=""), "$.items[0].namespace"),
        (http(action=" "), "$.items[0].action"),
        (act(method=""), "$.items[0].method"),
        (act(path=""), "$.items[0].path"),
    ],
)
def test_empty_parameter(item: dict[str, Any], path: str) -> None:
    err = reject(batch([item]), "empty_parameter")
    assert paths(err) == [path]
    assert _plain_item(item, 0) is None


def test_empty_parameter_counts_items_and_lists_every_field() -> None:
    items = [http(), act(namespace="", params=None), http(method=""), act()]
    err = reject(batch(items), "empty_parameter")
    assert paths(err) == ["$.items[1].namespace", "$.items[1].params", "$.items[2].method"]
    assert err.message == "batch b1 (tenant acme): 2 items have an empty parameter"


@pytest.mark.parametrize("params", [{}, [], 0, False, "x", {"a": None}])
def test_params_that_are_not_empty(params: Any) -> None:
    assert validate(batch([act(params=params)])).items[0]["params"] == params


# -- ids -----------------------------------------------------------------------------------


def test_ids_default_to_the_index_and_ints_become_strings() -> None:
    sub = validate(batch([http(), act(id=7), http(id="x"), act(id=-1)]))
    assert [item["id"] for item in sub.items] == ["0", "7", "x", "-1"]
    assert [item["index"] for item in sub.items] == [0, 1, 2, 3]


def test_first_index_offsets_default_ids_and_index() -> None:
    sub = validate(batch([http(), http(id="a"), http()]), first_index=1000, max_items=1003)
    assert [item["id"] for item in sub.items] == ["1000", "a", "1002"]
    assert [item["index"] for item in sub.items] == [1000, 1001, 1002]


@pytest.mark.parametrize("item_id", ["ключ-1", "名前", "🙂", "e\u0301", "a b/c"])
def test_unicode_ids_kept(item_id: str) -> None:
    sub = validate(batch([http(id=item_id), act(id=item_id + "2")]))
    assert [item["id"] for item in sub.items] == [item_id, item_id + "2"]


def test_duplicate_ids_list_every_duplicate() -> None:
    items = [
        http(id="a"),
        http(id="b"),
        act(id="a"),
        http(id=3),
        act(id="3"),
        http(id="a"),
        http(id="ключ"),
        http(id="ключ"),
        http(id="c"),
    ]
    err = reject(batch(items), "duplicate_item_id")
    assert paths(err) == [f"$.items[{i}].id" for i in (0, 2, 3, 4, 5, 6, 7)]
    assert err.details[0]["message"] == "item id 'a' is also used by 2 other items"
    assert err.details[3]["message"] == "item id '3' is also used by 1 other item"
    assert err.message == "batch b1 (tenant acme): 7 items share an id with another item"


def test_duplicate_of_a_default_id_points_at_the_item() -> None:
    err = reject(batch([http(id="1"), http()]), "duplicate_item_id")
    assert paths(err) == ["$.items[0].id", "$.items[1]"]


def test_default_ids_with_an_offset_collide_with_explicit_ids() -> None:
    reject(batch([http(id="10"), http()]), "duplicate_item_id", first_index=9)
    assert len(validate(batch([http(id="10"), http()]), first_index=0).items) == 2


# -- priority ------------------------------------------------------------------------------


def test_priority_between_codes() -> None:
    """Each fix uncovers the code of next priority; details hold only the raised code."""
    items = [http(id="a"), http(id="a"), act(params=None), http(stage=-1), http(), http()]
    raw = batch(items, tenant="initech")
    kw: dict[str, Any] = {"max_items": 5}

    err = reject(raw, "invalid_batch_format", **kw)
    assert paths(err) == ["$.items[3].stage"]
    items[3] = http()
    assert paths(reject(raw, "tenant_not_allowed", **kw)) == ["$.tenant"]
    raw["tenant"] = "acme"
    assert paths(reject(raw, "too_many_items", **kw)) == ["$.items"]
    del items[5]
    assert paths(reject(raw, "empty_parameter", **kw)) == ["$.items[2].params"]
    items[2] = act()
    assert paths(reject(raw, "duplicate_item_id", **kw)) == ["$.items[0].id", "$.items[1].id"]
    items[1] = http(id="b")
    assert len(validate(raw, **kw).items) == 5


def test_empty_batch_after_tenant_and_before_too_many_items() -> None:
    raw = batch(tenant="initech")
    raw["items"] = []
    reject(raw, "tenant_not_allowed")
    raw["tenant"] = "acme"
    reject(raw, "empty_batch", max_items=1, first_index=5)


def test_invalid_batch_format_beats_tenant_not_allowed() -> None:
    err = reject(batch(tenant="initech", deadline_s=-1), "invalid_batch_format")
    assert paths(err) == ["$.deadline_s"]
    assert err.message.startswith("batch b1 (tenant initech):")


# -- normalisation -------------------------------------------------------------------------


def test_http_item_normalised() -> None:
    body = {"name": "x", "tags": ["a"]}
    headers = {"X-Trace": "t1"}
    item = http(method="post", path="/v1/x?y=1", headers=headers, body=body, group="g", stage=2)
    normalised = validate(batch([item])).items[0]
    assert normalised == {
        "id": "0",
        "index": 0,
        "kind": "http",
        "method": "POST",
        "path": "/v1/x?y=1",
        "headers": {"X-Trace": "t1"},
        "body": body,
        "namespace": None,
        "action": None,
        "params": None,
        "group": "g",
        "stage": 2,
    }
    assert normalised["body"] is body  # kept, not copied
    assert item["method"] == "post"  # the input is left as it was


def test_action_item_normalised() -> None:
    params = {"name": "x", "nested": {"deep": [1, 2, 3]}}
    normalised = validate(batch([act(id=5, params=params)])).items[0]
    assert normalised == {
        "id": "5",
        "index": 0,
        "kind": "action",
        "method": None,
        "path": None,
        "headers": None,
        "body": None,
        "namespace": "crm",
        "action": "create",
        "params": params,
        "group": None,
        "stage": 0,
    }
    assert normalised["params"] is params


@pytest.mark.parametrize("method", ["get", "Head", "POST", "put", "pAtCh", "delete", "options"])
def test_methods_case_insensitive(method: str) -> None:
    assert validate(batch([http(method=method)])).items[0]["method"] == method.upper()


@pytest.mark.parametrize("body", [None, "raw text", 0, [1, 2], {"a": 1}, False])
def test_body_kept_as_given(body: Any) -> None:
    assert validate(batch([http(body=body)])).items[0]["body"] == body


def test_avro_style_items_with_null_fields() -> None:
    """An Avro decoder gives every optional field, set to null when absent."""
    none = dict.fromkeys(
        ["id", "method", "path", "headers", "body", "namespace", "action", "params"]
    )
    none.update(group=None, stage=None)
    items = [
        {**none, "method": "GET", "path": "/a"},
        {**none, "namespace": "crm", "action": "create", "params": {"a": 1}},
    ]
    sub = validate(batch(items))
    assert [(i["kind"], i["id"], i["stage"], i["headers"]) for i in sub.items] == [
        ("http", "0", 0, None),
        ("action", "1", 0, None),
    ]
    none_params = {**none, "namespace": "crm", "action": "create"}
    assert paths(reject(batch([none_params]), "empty_parameter")) == ["$.items[0].params"]


def test_fields_of_the_other_shape_are_ignored() -> None:
    item = http(body={"a": 1}, params={"x": 1})
    normalised = validate(batch([item])).items[0]
    assert (normalised["kind"], normalised["params"]) == ("http", None)
    normalised = validate(batch([act(headers={"a": "b"}, body="x")])).items[0]
    assert (normalised["kind"], normalised["headers"], normalised["body"]) == ("action", None, None)


VALID_ITEMS: list[Any] = [
    http(),
    http(id=30, method="delete", path="/a/b", headers={}, body=None, group="g", stage=0),
    http(headers={"X-A": "1", "Accept": "application/json"}, body="text", stage=5),
    act(),
    act(id="é", params="x", group="tx-1", stage=3),
]
#: valid, with a field of the other kind of item: the fast path leaves them to the full check
WITH_FIELDS_OF_THE_OTHER_KIND: list[Any] = [
    {"method": "GET", "path": "/a", "namespace": None, "action": "x", "params": None},
    {"namespace": "n", "action": "a", "params": [], "path": "/ignored"},
]


@pytest.mark.parametrize("item", VALID_ITEMS + WITH_FIELDS_OF_THE_OTHER_KIND)
def test_fast_path_agrees_with_the_full_check(item: Any) -> None:
    problems = _Problems()
    checked = _checked_item(item, 0, 42, problems)
    assert problems.count == 0 and checked is not None
    assert _plain_item(item, 42) == (None if item in WITH_FIELDS_OF_THE_OTHER_KIND else checked)
    assert tuple(checked) == ITEM_FIELDS


def test_items_that_are_mappings_but_not_dicts() -> None:
    items = [types.MappingProxyType(item) for item in VALID_ITEMS]
    sub = validate(batch(items))
    assert sub.items == validate(batch(list(VALID_ITEMS))).items


def test_submission_is_frozen() -> None:
    sub = validate(batch())
    with pytest.raises(AttributeError):
        sub.tenant = "other"  # type: ignore[misc]


# -- content hash --------------------------------------------------------------------------


def test_content_hash_ignores_key_order() -> None:
    a = {"tenant": "acme", "items": [{"method": "GET", "path": "/a", "body": {"x": 1, "y": 2}}]}
    b = {"items": [{"body": {"y": 2, "x": 1}, "path": "/a", "method": "GET"}], "tenant": "acme"}
    assert content_hash(a) == content_hash(b)
    canonical = json.dumps(a, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert content_hash(a) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: raw.update(tenant="globex"),
        lambda raw: raw["items"].reverse(),
        lambda raw: raw["items"][0].update(body={"x": 2}),
        lambda raw: raw["items"][0].update(body="1"),
        lambda raw: raw.update(metadata=None),
        lambda raw: raw["items"].append({"method": "GET", "path": "/a"}),
        lambda raw: raw.update(batch_id="b2"),
    ],
)
def test_content_hash_differs_for_other_content(change: Any) -> None:
    raw = {
        "batch_id": "b1",
        "tenant": "acme",
        "items": [{"method": "GET", "path": "/a", "body": 1}, {"id": "é", "path": "/b"}],
    }
    other = copy.deepcopy(raw)
    change(other)
    assert content_hash(other) != content_hash(raw)
    assert len(content_hash(raw)) == 64 and int(content_hash(raw), 16) >= 0


def test_content_hash_of_unicode_and_bytes() -> None:
    assert content_hash({"id": "ключ"}) != content_hash({"id": "ключ2"})
    assert content_hash({"b": b"\x00\x01"}) == content_hash({"b": bytearray(b"\x00\x01")})
    assert content_hash({"b": b"\x00\x01"}) != content_hash({"b": b"\x00\x02"})


# -- a large part --------------------------------------------------------------------------


def test_100000_items() -> None:
    n = 100_000
    items: list[dict[str, Any]] = [
        {"method": "post", "path": f"/things/{i}", "body": {"n": i}, "group": f"g{i % 100}"}
        if i % 2
        else {"id": f"job-{i}", "namespace": "crm", "action": "create", "params": {"n": i}}
        for i in range(n)
    ]
    sub = validate(batch(items), max_items=1_000_000, first_index=1_000)
    assert len(sub.items) == n
    assert sub.items[54_321] == {
        "id": "55321",
        "index": 55_321,
        "kind": "http",
        "method": "POST",
        "path": "/things/54321",
        "headers": None,
        "body": {"n": 54_321},
        "namespace": None,
        "action": None,
        "params": None,
        "group": "g21",
        "stage": 0,
    }
    assert sub.items[54_321]["body"] is items[54_321]["body"]
    assert sub.items[n - 2]["id"] == f"job-{n - 2}"
    assert sub.items[n - 2]["params"] is items[n - 2]["params"]


def test_metadata_up_to_its_limit_is_kept_and_beyond_it_is_refused() -> None:
    """Every status and final callback echoes the metadata: it must stay small."""
    fits = {"note": "x" * (MAX_METADATA_CHARS - len('{"note":""}'))}
    assert validate(batch(metadata=fits)).metadata == fits
    err = reject(batch(metadata={"note": "x" * MAX_METADATA_CHARS}), "invalid_batch_format")
    assert paths(err) == ["$.metadata"]
    assert "at most 65,536" in err.details[0]["message"]


@pytest.mark.parametrize("field", ["stage", "parts"])
def test_stage_and_parts_must_fit_a_32_bit_int(field: str) -> None:
    """Avro `int` fields carry them: a larger one must be refused, not fail an encoding."""
    raw = batch([act(stage=2**31)]) if field == "stage" else batch(parts=2**31)
    err = reject(raw, "invalid_batch_format")
    assert paths(err) == (["$.items[0].stage"] if field == "stage" else ["$.parts"])
    top = batch([act(stage=2**31 - 1)]) if field == "stage" else batch(parts=2**31 - 1)
    assert validate(top)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://127.0.0.1:99999/x",
        "http://h:port/x",
        "http:///path",
        "http://h/ok\r\nX: y",
        "http://h/\u0000",
        "http://h/a b",
        "ftp://h/x",
        "hooks.example.com/x",
    ],
)
def test_a_callback_url_no_request_could_reach_is_refused(url: str) -> None:
    err = reject(batch(callback={"url": url}), "invalid_batch_format")
    assert paths(err) == ["$.callback.url"]


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/a?b=1", "http://127.0.0.1:8080/cb", "http://[::1]:80/x"]
)
def test_a_callback_url_with_a_host_is_kept(url: str) -> None:
    assert validate(batch(callback={"url": url})).callback == {"url": url, "mode": "batch"}
