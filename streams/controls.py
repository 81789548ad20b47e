"""Batch controls every item processor must see: cancelled, timed out, failed groups.

Items of one batch are spread over every partition of `batchwire.items`, so a processor
cannot learn about a cancel from its own partitions.  The aggregator publishes a batch's
controls on the internal compacted topic `batchwire.controls`; every worker reads all of
its partitions into memory with its own group-less consumer.  (Faust's GlobalTable does
the same but is documented to loop in recovery with several workers.)

Keys: `tenant/batch_id` holds `{cancelled, timed_out}`; the batch's failed groups are in
pages keyed `tenant/batch_id#groups/<n>` (`{failed_groups: [...]}`, each page at most
`GROUP_PAGE_BYTES`), since a batch may fail groups by the hundred thousand: one record of
them all would outgrow a Kafka message, and publishing it again at each failure would
cost the square of their number.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from streams.compacted import CompactedView
from streams.keys import batch_key

log = logging.getLogger(__name__)

#: a page of failed group names, at most (a name alone may be bigger: it gets a page)
GROUP_PAGE_BYTES = 64 * 1024
_PAGE = "#groups/"


def group_page_key(key: str, page: int) -> str:
    """The key of a batch's (`tenant/batch_id`) page of failed groups; `#` is in no batch
    key (tenants and batch ids do not hold it)."""
    return f"{key}{_PAGE}{page}"


class Controls(CompactedView):
    """The latest control record of each batch, and its failed groups by page."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: dict[str, dict[str, frozenset[str]]] = {}  # batch key -> page -> groups

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        name = key.decode(errors="replace") if key is not None else ""
        if _PAGE not in name:
            super().apply(key, value)
            return
        batch, page = name.rsplit(_PAGE, 1)
        try:
            groups = json.loads(value)["failed_groups"] if value else None
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed record for %r", key)
            return
        pages = self.failed.setdefault(batch, {})
        if groups is None:
            pages.pop(page, None)
        elif isinstance(groups, list):
            pages[page] = frozenset(g for g in groups if isinstance(g, str))
        if not pages:
            del self.failed[batch]

    def stop_reason(self, key: str) -> str | None:
        """`cancelled` or `timed_out` when the batch's pending items must not start."""
        control = self.values.get(key)
        if control is None:
            return None
        if control.get("cancelled"):
            return "cancelled"
        if control.get("timed_out"):
            return "timed_out"
        return None

    def group_failed(self, key: str, group: str) -> bool:
        if any(group in page for page in self.failed.get(key, {}).values()):
            return True
        control = self.values.get(key)  # a record of a version before pages
        return control is not None and group in control.get("failed_groups", ())


def control_record(state: dict[str, Any]) -> dict[str, Any]:
    return {"cancelled": state["cancel_requested"], "timed_out": state["deadline_passed"]}


def add_failed_group(state: dict[str, Any], group: str) -> tuple[int, list[str]] | None:
    """Note a failed group in the batch's current page (`state["failed_groups"]`, number
    `state["group_page"]`); the page it filled (number, groups), to be published now, else
    None. The current page is published by the caller when it changed. Not deduplicated:
    a group fails once (its next items are skipped), and a group noted twice is harmless."""
    current: list[str] = state.setdefault("failed_groups", [])
    full = None
    size = len(json.dumps(group)) + 2  # and ", " before it
    used = state.get("group_page_bytes", 0)
    if current and used + size > GROUP_PAGE_BYTES:
        full = (state.get("group_page", 0), current)
        state["group_page"] = full[0] + 1
        state["failed_groups"] = current = []
        used = 0
    current.append(group)
    state["group_page_bytes"] = used + size
    return full


def page_record(groups: list[str]) -> dict[str, Any]:
    return {"failed_groups": groups}


def control_keys(state: dict[str, Any]) -> list[str]:
    """Keys of every control record published for the batch (to delete when it is purged):
    its own when it was cancelled or passed its deadline (or failed groups before pages),
    and its pages of failed groups."""
    key = batch_key(state["tenant"], state["batch_id"])
    failed = bool(state.get("failed_groups"))
    own = [key] if state["cancel_requested"] or state["deadline_passed"] or failed else []
    pages = range(state.get("group_page", 0) + 1) if failed else range(0)
    return own + [group_page_key(key, page) for page in pages]
