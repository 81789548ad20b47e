"""Validate and normalise one `BatchSubmitted` part (a dict parsed from JSON or Avro).

`validate_submission` either returns a frozen `Submission` whose items are normalised dicts
(every key present, fields that do not apply set to None) or raises one `SubmissionError`
carrying the contract's code of highest priority and one detail `{path, message}` per
problem of that code, each with the JSON path of the offending value.

A field set to null counts as absent (Avro decodes an optional field as None), with one
exception fixed by the contract: an action item's `params` set to null is `empty_parameter`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from streams.errors import SubmissionError

INVALID = "invalid_batch_format"
INVALID_JSON = "invalid_json"
TENANT_NOT_ALLOWED = "tenant_not_allowed"
EMPTY_BATCH = "empty_batch"
TOO_MANY_ITEMS = "too_many_items"
EMPTY_PARAMETER = "empty_parameter"
DUPLICATE_ITEM_ID = "duplicate_item_id"
PRIORITY = (
    INVALID,
    TENANT_NOT_ALLOWED,
    EMPTY_BATCH,
    TOO_MANY_ITEMS,
    EMPTY_PARAMETER,
    DUPLICATE_ITEM_ID,
)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CALLBACK_MODES = ("batch", "item", "both")
DEFAULT_DEADLINE_S = 1800.0
MAX_DEADLINE_S = 7 * 24 * 3600.0
MAX_BATCH_ID_LEN = 128
#: the largest stage, part count and part number: Avro `int` fields hold them
MAX_INT = 2**31 - 1
#: JSON nested deeper than this (the submission object is level 1) is invalid_batch_format:
#: far below Python's recursion limit, so no later step (hashing, encoding) can overflow.
MAX_JSON_DEPTH = 128
#: the most characters of JSON a batch's `metadata` may take: every status and final
#: callback echoes it, and each must fit in one Kafka message
MAX_METADATA_CHARS = 64 * 1024
#: details kept per code: a part of 1 MB with a bad item in every few bytes must still give
#: a rejection (and an HTTP answer) of a few kilobytes; the message gives the full count.
MAX_DETAILS = 100
#: user-supplied values quoted in messages are cut to this many characters
MAX_QUOTE = 80

_BATCH_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_BATCH_ID_LEN}}}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: The fields of a normalised item, in their order (`_plain_item`, `_checked_item`).
ITEM_FIELDS = (
    "id",
    "index",
    "kind",
    "method",
    "path",
    "headers",
    "body",
    "namespace",
    "action",
    "params",
    "group",
    "stage",
)


@dataclass(frozen=True)
class Submission:
    """One validated part of a batch; `items` are the normalised item dicts."""

    batch_id: str
    tenant: str
    items: list[dict[str, Any]]
    headers: dict[str, str]
    callback: dict[str, str] | None
    stop_on_failure: bool
    deadline_s: float
    metadata: Any
    part: int
    parts: int
    first_index: int


def _new_batch_id() -> str:
    return uuid.uuid4().hex


def validate_submission(
    raw: Any,
    *,
    allowed_tenants: frozenset[str],
    max_items: int,
    first_index: int = 0,
    new_batch_id: Callable[[], str] = _new_batch_id,
) -> Submission:
    """Validate one `BatchSubmitted` part; raise `SubmissionError` on the first code by priority.

    `first_index` is the index, in the whole batch, of this part's first item: default item
    ids and `index` count from it, and `first_index + len(items)` may not exceed `max_items`.
    `new_batch_id` is called only when the part carries no `batch_id` and is valid.
    """
    if not isinstance(raw, Mapping):
        detail = {"path": "$", "message": "a submission must be a JSON object"}
        raise SubmissionError(INVALID, "the submission is not a JSON object", [detail])
    problems = _Problems()
    tenant = _tenant(raw.get("tenant"), allowed_tenants, problems)
    batch_id = _batch_id(raw.get("batch_id"), problems)
    items = _items(raw.get("items"), first_index, max_items, problems)
    headers = _string_map(raw.get("headers"), "$.headers", problems)
    callback = _callback(raw.get("callback"), problems)
    stop_on_failure = _stop_on_failure(raw.get("stop_on_failure"), problems)
    deadline_s = _deadline(raw.get("deadline_s"), problems)
    part, parts = _part_and_parts(raw.get("part"), raw.get("parts"), problems)
    _metadata(raw.get("metadata"), problems)
    problems.raise_first(batch_id, tenant)
    return Submission(
        batch_id=batch_id or new_batch_id(),
        tenant=tenant,
        items=items,
        headers=headers or {},
        callback=callback,
        stop_on_failure=stop_on_failure,
        deadline_s=deadline_s,
        metadata=raw.get("metadata"),
        part=part,
        parts=parts,
        first_index=first_index,
    )


def content_hash(raw: Mapping[str, Any]) -> str:
    """The sha256 hex digest of the part as canonical JSON (sorted keys, compact separators).

    Equal content gives an equal hash whatever the key order; any other difference, the
    order of items included, gives another hash.
    """
    text = json.dumps(
        raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_default(value: Any) -> Any:
    """Encode the few non-JSON values an Avro decoder may hand us, tagged by type."""
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    return {"$" + type(value).__name__: repr(value)}


def check_depth(value: Any, *, path: str = "$", level: int = 1) -> None:
    """Raise `invalid_batch_format` when `value` (at `level`) nests deeper than
    `MAX_JSON_DEPTH`, with the JSON path of the first value too deep.  Iterative."""
    stack = [(value, level)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if type(node) is dict:
            children: Any = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            where = _deep_path(value, path, level)
            message = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            raise SubmissionError(INVALID, message, [{"path": where, "message": message}])
        for child in children:
            if type(child) is dict or type(child) is list:
                push((child, depth + 1))


def may_hold_surrogates(raw: bytes) -> bool:
    """Whether JSON text (or an Avro message holding JSON text) has a `\\uD…` escape: the
    only way a decoded string can hold a lone surrogate (strict UTF-8 yields none)."""
    return b"\\ud" in raw or b"\\uD" in raw


def check_unicode(value: Any, *, path: str = "$") -> None:
    """Raise `invalid_json` when a string (or key) of `value` holds a lone surrogate, which
    no UTF-8 text can carry; the detail names its JSON path.  Iterative."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if type(node) is str:
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    message = "a string holds an unpaired UTF-16 surrogate (not Unicode text)"
                    details = [{"path": where, "message": message}]
                    raise SubmissionError(INVALID_JSON, message, details) from None
        elif type(node) is dict:
            for key, child in node.items():
                stack.append((key, where))
                stack.append((child, _key_path(where, str(key))))
        elif type(node) is list:
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))


def _deep_path(value: Any, path: str, level: int) -> str:
    """The path of the first container deeper than `MAX_JSON_DEPTH` (there is one)."""
    stack = [(value, level, path)]
    while stack:
        node, depth, where = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return where
        if type(node) is dict:
            stack.extend(
                (v, depth + 1, _key_path(where, str(k)))
                for k, v in node.items()
                if type(v) in (dict, list)
            )
        elif type(node) is list:
            stack.extend(
                (v, depth + 1, f"{where}[{i}]")
                for i, v in enumerate(node)
                if type(v) in (dict, list)
            )
    return path


def _clip(text: str) -> str:
    """`text` cut to `MAX_QUOTE` characters."""
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…"


def _quote(value: Any) -> str:
    """`repr(value)`, cut to `MAX_QUOTE` characters."""
    return _clip(repr(value))


class _Problems:
    """Problems found so far, grouped by code, in the order they were found; at most
    `MAX_DETAILS` details are kept per code, `totals` counts them all."""

    def __init__(self) -> None:
        self.details: dict[str, list[dict[str, Any]]] = {}
        self.totals: dict[str, int] = {}
        self.items: dict[str, set[int]] = {}
        self.count = 0

    def add(self, code: str, path: str, message: str, item: int | None = None) -> None:
        details = self.details.setdefault(code, [])
        if len(details) < MAX_DETAILS:
            details.append({"path": path, "message": message})
        self.totals[code] = self.totals.get(code, 0) + 1
        self.count += 1
        if item is not None:
            self.items.setdefault(code, set()).add(item)

    def raise_first(self, batch_id: str | None, tenant: str) -> None:
        for code in PRIORITY:
            details = self.details.get(code)
            if details:
                label = _label(batch_id, tenant)
                total = self.totals[code]
                summary = _summary(code, details, total, len(self.items.get(code, ())))
                if total > len(details):
                    summary += f" (the first {len(details)} of {total} are listed)"
                raise SubmissionError(code, f"{label}: {summary}", details)


def _label(batch_id: str | None, tenant: str) -> str:
    label = f"batch {batch_id}" if batch_id else "submission"
    return f"{label} (tenant {_clip(tenant)})" if tenant else label


def _summary(code: str, details: list[dict[str, Any]], total: int, items: int) -> str:
    if code == INVALID:
        return f"the batch format is invalid ({_plural(total, 'problem')})"
    if code == TENANT_NOT_ALLOWED:
        return "the tenant is not allowed to submit batches"
    if code == EMPTY_BATCH:
        return "the batch has no items"
    if code == EMPTY_PARAMETER:
        verb = "has" if items == 1 else "have"
        return f"{_plural(items, 'item')} {verb} an empty parameter"
    if code == DUPLICATE_ITEM_ID:
        verb = "shares" if items == 1 else "share"
        return f"{_plural(items, 'item')} {verb} an id with another item"
    return str(details[0]["message"])


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _key_path(base: str, key: str) -> str:
    """`$.a.b` for identifier keys, `$.a['x-y']` otherwise; a key is cut to `MAX_QUOTE`
    characters (a path must stay small whatever the keys of the submission)."""
    key = _clip(key)
    if _IDENTIFIER.fullmatch(key):
        return f"{base}.{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{base}['{escaped}']"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


# -- batch-level fields --------------------------------------------------------------------


def _tenant(value: Any, allowed: frozenset[str], problems: _Problems) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.add(INVALID, "$.tenant", "tenant must be a non-empty string")
        return ""
    if value not in allowed:
        problems.add(
            TENANT_NOT_ALLOWED, "$.tenant", f"tenant {_quote(value)} may not submit batches"
        )
    return value


def is_batch_id(value: Any) -> bool:
    """Whether `value` is a batch id as a submission may give it. Not dots alone: `.` and
    `..` in a URL path are collapsed by HTTP clients, so the batch could never be looked up."""
    return (
        isinstance(value, str) and _BATCH_ID.fullmatch(value) is not None and value.strip(".") != ""
    )


def _batch_id(value: Any, problems: _Problems) -> str | None:
    """The client's batch id, or None when absent (one is generated once the part is valid)."""
    if value is None:
        return None
    if not is_batch_id(value):
        message = (
            f"batch_id must be 1 to {MAX_BATCH_ID_LEN} characters from A-Z a-z 0-9 . _ : -, "
            "not dots alone"
        )
        problems.add(INVALID, "$.batch_id", message)
        return None
    return value


def _string_map(value: Any, path: str, problems: _Problems) -> dict[str, str] | None:
    """An object of string -> string, copied; None when absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.add(INVALID, path, "must be an object of string values")
        return None
    ok = True
    for key, val in value.items():
        if not isinstance(key, str):
            problems.add(INVALID, path, f"key {_quote(key)} must be a string")
            ok = False
        elif not isinstance(val, str):
            problems.add(INVALID, _key_path(path, key), "must be a string")
            ok = False
    return dict(value) if ok else None


def valid_callback(value: Any) -> dict[str, str] | None:
    """A submission's `callback` when it is valid, else None (a refused batch still calls
    back a client who gave a valid one)."""
    problems = _Problems()
    callback = _callback(value, problems)
    return callback if problems.count == 0 else None


def _callback(value: Any, problems: _Problems) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.add(INVALID, "$.callback", "callback must be an object {url, mode}")
        return None
    url = value.get("url")
    mode = value.get("mode")
    mode = "batch" if mode is None else mode
    if not _is_http_url(url):
        message = "url must be an http:// or https:// URL with a host (and a valid port)"
        problems.add(INVALID, "$.callback.url", message)
        url = None
    if mode not in CALLBACK_MODES:
        problems.add(INVALID, "$.callback.mode", "mode must be one of batch, item, both")
        return None
    return {"url": url, "mode": mode} if isinstance(url, str) else None


def _is_http_url(value: Any) -> bool:
    """An absolute http(s) URL with a host, a valid port if any, and no whitespace or
    control characters (which would never reach a callback target)."""
    if not isinstance(value, str) or not value.isprintable() or " " in value:
        return False
    try:
        url = urlsplit(value)
        port = url.port  # raises ValueError when out of range or not a number
    except ValueError:  # an unclosed [IPv6 address], a bad port
        return False
    return url.scheme.lower() in ("http", "https") and bool(url.hostname) and port != 0


def _stop_on_failure(value: Any, problems: _Problems) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        problems.add(INVALID, "$.stop_on_failure", "stop_on_failure must be true or false")
        return True
    return value


def _metadata(value: Any, problems: _Problems) -> None:
    if value is None:
        return
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        problems.add(INVALID, "$.metadata", "metadata must be a JSON value")
        return
    if size > MAX_METADATA_CHARS:
        message = f"metadata takes {size:,} characters as JSON; at most {MAX_METADATA_CHARS:,}"
        problems.add(INVALID, "$.metadata", message)


def _deadline(value: Any, problems: _Problems) -> float:
    if value is None:
        return DEFAULT_DEADLINE_S
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value <= MAX_DEADLINE_S:  # NaN fails the comparison too
        message = f"deadline_s must be a number of seconds > 0 and <= {MAX_DEADLINE_S:.0f}"
        problems.add(INVALID, "$.deadline_s", message)
        return DEFAULT_DEADLINE_S
    return float(value)


def _part_and_parts(part: Any, parts: Any, problems: _Problems) -> tuple[int, int]:
    part = 0 if part is None else part
    parts = 1 if parts is None else parts
    ok = True
    if not _is_int(part) or part < 0:
        problems.add(INVALID, "$.part", "part must be an integer >= 0")
        ok = False
    if not _is_int(parts) or not 1 <= parts <= MAX_INT:
        problems.add(INVALID, "$.parts", f"parts must be an integer from 1 to {MAX_INT}")
        ok = False
    if ok and part >= parts:
        problems.add(INVALID, "$.part", f"part {part} must be lower than parts ({parts})")
    return (part, parts) if ok else (0, 1)


# -- items ---------------------------------------------------------------------------------


def _items(
    value: Any, first_index: int, max_items: int, problems: _Problems
) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        problems.add(INVALID, "$.items", "items must be a list")
        return []
    if not value:
        problems.add(EMPTY_BATCH, "$.items", "the batch has no items")
        return []
    if first_index + len(value) > max_items:
        message = (
            f"{len(value)} items from index {first_index} exceed the limit of "
            f"{max_items} items per batch"
        )
        problems.add(TOO_MANY_ITEMS, "$.items", message)
    out: list[dict[str, Any]] = []
    append = out.append
    for i, item in enumerate(value):
        index = first_index + i
        normalised = _plain_item(item, index) or _checked_item(item, i, index, problems)
        if normalised is not None:
            append(normalised)
    if len(out) == len(value):  # else a problem of higher priority is recorded already
        _check_unique_ids(value, out, problems)
    return out


def _check_unique_ids(
    items: list[Any], normalised: list[dict[str, Any]], problems: _Problems
) -> None:
    """One detail per item whose id another item of the part also has, in item order."""
    if len({item["id"] for item in normalised}) == len(normalised):
        return
    indices: dict[str, list[int]] = {}
    for i, item in enumerate(normalised):
        indices.setdefault(item["id"], []).append(i)
    for i, item in enumerate(normalised):
        others = len(indices[item["id"]]) - 1
        if others:
            path = f"$.items[{i}].id" if items[i].get("id") is not None else f"$.items[{i}]"
            message = (
                f"item id {_quote(item['id'])} is also used by {_plural(others, 'other item')}"
            )
            problems.add(DUPLICATE_ITEM_ID, path, message, i)


def _plain_item(item: Any, index: int) -> dict[str, Any] | None:
    """The normalised item when it is plainly valid, else None: `_checked_item` then decides.

    The fast path of the common case: one call per item, no call per field, the result built
    once. It may refuse a valid item (an id given as an int subclass, say), never accept an
    invalid one; `_checked_item` holds the rules and the error messages.
    """
    if type(item) is not dict:
        return None
    get = item.get
    item_id, group, stage = get("id"), get("group"), get("stage")
    if item_id is None:
        item_id = str(index)
    elif type(item_id) is int:
        item_id = str(item_id)
    elif type(item_id) is not str or not item_id:
        return None
    if group is not None and (type(group) is not str or not group.strip()):
        return None
    if stage is None:
        stage = 0
    elif type(stage) is not int or not 0 <= stage <= MAX_INT:
        return None
    method, namespace = get("method"), get("namespace")
    if method is not None:  # an HTTP call, unless it is malformed or also an action
        target, headers = get("path"), get("headers")
        if namespace is not None or get("action") is not None:  # judged by `_checked_item`
            return None
        if type(method) is not str or not method.isascii() or type(target) is not str:
            return None
        method = method.upper()
        if method not in HTTP_METHODS or target[:1] != "/" or target[1:2] == "/":
            return None
        if "://" in target or (headers is not None and not _plain_headers(headers)):
            return None
        kind, body, action, params = "http", get("body"), None, None
    else:  # an action
        if get("path") is not None:  # judged by `_checked_item`
            return None
        action, params = get("action"), get("params")
        if type(namespace) is not str or not namespace.strip() or "params" not in item:
            return None
        if type(action) is not str or not action.strip():
            return None
        if params is None or (isinstance(params, str) and not params.strip()):
            return None
        kind, target, headers, body = "action", None, None, None
    return {
        "id": item_id,
        "index": index,
        "kind": kind,
        "method": method,
        "path": target,
        "headers": None if headers is None else dict(headers),
        "body": body,
        "namespace": namespace,
        "action": action,
        "params": params,
        "group": group,
        "stage": stage,
    }


def _plain_headers(headers: Any) -> bool:
    if type(headers) is not dict:
        return False
    return all(type(key) is str and type(value) is str for key, value in headers.items())


def _checked_item(item: Any, i: int, index: int, problems: _Problems) -> dict[str, Any] | None:
    """The item checked field by field: every problem is recorded, with its JSON path."""
    path = f"$.items[{i}]"
    if not isinstance(item, Mapping):
        problems.add(INVALID, path, "an item must be a JSON object", i)
        return None
    before = problems.count
    item_id = _item_id(item.get("id"), index, path, i, problems)
    group = item.get("group")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        problems.add(INVALID, f"{path}.group", "group must be a non-empty string", i)
    stage = item.get("stage")
    stage = 0 if stage is None else stage
    if not _is_int(stage) or not 0 <= stage <= MAX_INT:
        problems.add(INVALID, f"{path}.stage", f"stage must be an integer from 0 to {MAX_INT}", i)
    kind = _kind(item, path, i, problems)
    if kind == "http":
        fields = _http_fields(item, path, i, problems)
    elif kind == "action":
        fields = _action_fields(item, path, i, problems)
    else:
        return None
    for key in ("namespace", "action") if kind == "http" else ("method", "path"):
        value = item.get(key)  # a field of the other kind: ignored, unless it is empty
        if isinstance(value, str) and not value.strip():
            problems.add(EMPTY_PARAMETER, f"{path}.{key}", f"{key} is empty", i)
    if problems.count != before:
        return None
    return {"id": item_id, "index": index, **fields, "group": group, "stage": stage}


def _item_id(value: Any, index: int, path: str, i: int, problems: _Problems) -> str | None:
    if value is None:
        return str(index)
    if _is_int(value):
        return str(value)
    if isinstance(value, str) and value:
        return value
    problems.add(INVALID, f"{path}.id", "id must be a non-empty string or an integer", i)
    return None


def _kind(item: Mapping[str, Any], path: str, i: int, problems: _Problems) -> str | None:
    """`http` or `action` by the item's shape; a field set to null does not count."""
    http = item.get("method") is not None and item.get("path") is not None
    action = (
        item.get("namespace") is not None and item.get("action") is not None and "params" in item
    )
    if http and action:
        message = "an item is either an HTTP call (method, path) or an action, not both"
        problems.add(INVALID, path, message, i)
        return None
    if not http and not action:
        message = (
            "an item must be an HTTP call {method, path} or an action {namespace, action, params}"
        )
        problems.add(INVALID, path, message, i)
        return None
    return "http" if http else "action"


def _required_text(
    item: Mapping[str, Any], key: str, path: str, i: int, problems: _Problems
) -> str | None:
    """A string field that must not be empty; None once a problem is recorded."""
    value = item[key]
    if not isinstance(value, str):
        problems.add(INVALID, f"{path}.{key}", f"{key} must be a string", i)
        return None
    if not value.strip():
        problems.add(EMPTY_PARAMETER, f"{path}.{key}", f"{key} is empty", i)
        return None
    return value


def _http_fields(item: Mapping[str, Any], path: str, i: int, problems: _Problems) -> dict[str, Any]:
    method = _required_text(item, "method", path, i, problems)
    if method is not None:
        ascii_name = method.isascii()  # before upper(): "po\u017ft".upper() == "POST"
        method = method.upper()
        if not ascii_name or method not in HTTP_METHODS:
            allowed = " ".join(sorted(HTTP_METHODS))
            problems.add(INVALID, f"{path}.method", f"method must be one of {allowed}", i)
    target = _required_text(item, "path", path, i, problems)
    if target is not None and (
        not target.startswith("/") or target.startswith("//") or "://" in target
    ):
        message = "path must start with a single / and name no host (it is relative to the target)"
        problems.add(INVALID, f"{path}.path", message, i)
    headers = item.get("headers")
    if headers is not None:
        headers = _string_map(headers, f"{path}.headers", problems)
    return {
        "kind": "http",
        "method": method,
        "path": target,
        "headers": headers,
        "body": item.get("body"),
        "namespace": None,
        "action": None,
        "params": None,
    }


def _action_fields(
    item: Mapping[str, Any], path: str, i: int, problems: _Problems
) -> dict[str, Any]:
    namespace = _required_text(item, "namespace", path, i, problems)
    action = _required_text(item, "action", path, i, problems)
    params = item["params"]
    if params is None or _is_blank(params):
        problems.add(EMPTY_PARAMETER, f"{path}.params", "params is null or empty", i)
    return {
        "kind": "action",
        "method": None,
        "path": None,
        "headers": None,
        "body": None,
        "namespace": namespace,
        "action": action,
        "params": params,
    }
