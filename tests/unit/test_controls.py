"""Batch controls and their pages of failed groups (streams.controls)."""

from __future__ import annotations

import json
from typing import Any

from streams.controls import (
    GROUP_PAGE_BYTES,
    Controls,
    add_failed_group,
    control_keys,
    control_record,
    group_page_key,
    page_record,
)


def state(**fields: Any) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "batch_id": "b1",
        "cancel_requested": False,
        "deadline_passed": False,
        **fields,
    }


def publish(view: Controls, key: str, record: dict[str, Any] | None) -> None:
    view.apply(key.encode(), None if record is None else json.dumps(record).encode())


def test_a_hundred_thousand_failed_groups_fill_pages_no_bigger_than_the_limit() -> None:
    batch = state()
    view = Controls()
    published: dict[str, dict[str, Any]] = {}
    for n in range(100_000):
        full = add_failed_group(batch, f"customer-{n:06d}")
        if full is not None:
            page, groups = full
            published[group_page_key("acme/b1", page)] = page_record(groups)
    published[group_page_key("acme/b1", batch["group_page"])] = page_record(batch["failed_groups"])
    for key, record in published.items():
        assert len(json.dumps(record)) <= GROUP_PAGE_BYTES + 64
        publish(view, key, record)
    assert len(published) == batch["group_page"] + 1 > 20
    assert all(view.group_failed("acme/b1", f"customer-{n:06d}") for n in range(0, 100_000, 997))
    assert not view.group_failed("acme/b1", "customer-100000")
    assert not view.group_failed("acme/b2", "customer-000001")
    # purging the batch deletes every page it published
    keys = control_keys(batch)
    assert set(published) <= set(keys) and "acme/b1" in keys
    for key in keys:
        publish(view, key, None)
    assert view.failed == {} and not view.group_failed("acme/b1", "customer-000001")


def test_a_cancel_is_its_own_record_and_a_batch_without_controls_has_no_keys() -> None:
    view = Controls()
    assert control_keys(state()) == []
    cancelled = state(cancel_requested=True)
    publish(view, "acme/b1", control_record(cancelled))
    assert view.stop_reason("acme/b1") == "cancelled"
    assert control_keys(cancelled) == ["acme/b1"]
    publish(view, "acme/b1", None)
    assert view.stop_reason("acme/b1") is None


def test_a_record_from_before_pages_still_names_its_failed_groups() -> None:
    view = Controls()
    publish(view, "acme/old", {"cancelled": False, "timed_out": False, "failed_groups": ["g"]})
    assert view.group_failed("acme/old", "g") and not view.group_failed("acme/old", "h")


def test_a_malformed_page_is_ignored() -> None:
    view = Controls()
    view.apply(group_page_key("acme/b1", 0).encode(), b"not json")
    assert view.failed == {}
    publish(view, group_page_key("acme/b1", 1), {"failed_groups": ["g", 7]})
    assert view.group_failed("acme/b1", "g")
    assert not view.group_failed("acme/b1", "7")
