"""A batch's state and how events change it (streams.aggregation); pure, no Kafka."""

from __future__ import annotations

from typing import Any

import pytest

from streams import aggregation, codec, ledger_pieces
from streams.aggregation import (
    COUNTERS,
    ITEM_ERROR_CHARS,
    ITEM_ERRORS_CAP,
    ITEM_ERRORS_CHARS,
    apply_result,
    final_status,
    finish,
    is_complete,
    is_final,
    new_state,
    pass_deadline,
    register_part,
    reject,
    release_next_stage,
    request_cancel,
    status_outcome,
    status_record,
    unreleased_stages,
)

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:00:01Z"
T2 = "2024-05-01T10:00:02Z"
T3 = "2024-05-01T10:00:03Z"
SUBMITTED = "2024-05-01T09:59:59Z"
CALLBACK = {"url": "https://hooks.example.com/batch", "mode": "batch"}
METADATA = {"source": "nightly-sync", "run": 7}

# --------------------------------------------------------------------------------------
# Sample data
# --------------------------------------------------------------------------------------


def item(item_id: str, index: int, stage: int = 0, group: str | None = None) -> dict[str, Any]:
    """A validated HTTP item as it travels in a part (stage normalised to an int)."""
    return {
        "id": item_id,
        "index": index,
        "method": "POST",
        "path": f"/orders/{item_id}",
        "headers": None,
        "body": {"n": index},
        "namespace": None,
        "action": None,
        "params": None,
        "group": group,
        "stage": stage,
    }


def part(
    items: list[dict[str, Any]],
    number: int = 0,
    parts: int = 1,
    *,
    deadline_at: float = 123.0,
    metadata: Any = None,
    callback: dict[str, Any] | None = None,
    submitted_at: str | None = SUBMITTED,
    piece: int = 0,
    pieces: int = 1,
    below: int | None = aggregation.RELEASE_WINDOW,
) -> dict[str, Any]:
    """The fields of a part's piece as the aggregator reads them (`ledger_pieces`), with its
    counts; `below=None` for a piece from an exploder that did not write its window."""
    fields = {
        "type": "part",
        "tenant": "acme",
        "batch_id": "b-1",
        "part": number,
        "parts": parts,
        "headers": {},
        "callback": callback,
        "stop_on_failure": True,
        "deadline_at": deadline_at,
        "metadata": metadata,
        "submitted_at": submitted_at,
    }
    if below is not None:
        fields["prerelease_below"] = below
    made = ledger_pieces.make(fields, items)[0]
    assert made.fields["pieces"] == 1, "a test part must fit in one piece"
    return {**made.fields, "piece": piece, "pieces": pieces}


def result(
    item_id: str,
    status: str = "succeeded",
    *,
    stage: int | None = 0,
    errors: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "batch_id": "b-1",
        "tenant": "acme",
        "item_id": item_id,
        "index": 0,
        "success": status == "succeeded",
        "status": status,
        "code": 200 if status == "succeeded" else None,
        "headers": {},
        "output": None,
        "errors": errors if errors is not None else [],
        "attempts": 1,
        "started_at": T1,
        "finished_at": T2,
        "request": {"id": item_id, "stage": stage},
    }


def state() -> dict[str, Any]:
    return new_state("acme", "b-1", T0)


def counters(s: dict[str, Any]) -> dict[str, int]:
    return {name: s[name] for name in COUNTERS}


def zero(**set_: int) -> dict[str, int]:
    return {**dict.fromkeys(COUNTERS, 0), **set_}


# --------------------------------------------------------------------------------------
# new_state
# --------------------------------------------------------------------------------------


def test_new_state_defaults() -> None:
    s = new_state("acme", "b-1", T0)
    assert s["tenant"] == "acme"
    assert s["batch_id"] == "b-1"
    assert s["status"] == "accepted"
    assert not is_final(s)
    assert s["parts"] is None
    assert s["parts_received"] == []
    assert counters(s) == zero()
    assert s["item_errors"] == {}
    assert s["item_errors_truncated"] is False
    assert s["stage_posted"] == {}
    assert s["stage_done"] == {}
    assert s["released_stage"] == 0
    assert s["created_at"] == T0
    assert s["updated_at"] == T0
    assert s["finished_at"] is None
    assert s["deadline_at"] is None
    assert s["metadata"] is None
    assert s["callback"] is None
    assert s["cancel_requested"] is False
    assert s["deadline_passed"] is False
    assert s["applied"] == {}
    # a fresh batch is not complete: its parts are unknown
    assert not is_complete(s)


def test_new_states_do_not_share_mutable_fields() -> None:
    a, b = state(), state()
    register_part(a, part([item("x", 0)]), T1)
    apply_result(a, result("x", "failed", errors=["boom"]), T1)
    assert b["parts_received"] == []
    assert b["item_errors"] == {}
    assert b["stage_posted"] == {}
    assert b["stage_done"] == {}


# --------------------------------------------------------------------------------------
# register_part
# --------------------------------------------------------------------------------------


def test_register_part_counts_posted_and_stage_posted() -> None:
    s = state()
    items = [item("a", 0), item("b", 1), item("c", 2, stage=1), item("d", 3, stage=3)]
    assert register_part(s, part(items), T1) is True
    assert s["posted"] == 4
    assert s["stage_posted"] == {"0": 2, "1": 1, "3": 1}
    assert s["parts"] == 1
    assert s["parts_received"] == [0]
    assert counters(s) == zero(posted=4)
    assert s["updated_at"] == T1


def test_piece_counts_count_stages_and_the_head_the_exploder_sends() -> None:
    items = [item("a", 0), item("b", 1, group="g"), item("c", 2, stage=2), item("d", 900)]
    below = aggregation.RELEASE_WINDOW
    fields = part(items)
    made = ledger_pieces.make(fields, items)[0]
    counts = aggregation.piece_counts(made.items, below)
    # only "a": "b" is in a group, "c" of stage 2, "d" beyond the window
    assert counts == {"stage_posted": {"0": 3, "2": 1}, "prereleased": 1}
    assert fields["counts"] == counts


def test_register_part_takes_the_counts_the_piece_carries() -> None:
    items = [item("a", 0), item("b", 1)]
    s = state()
    counts = {"stage_posted": {"0": 1, "4": 1}, "prereleased": 1}
    register_part(s, {**part(items), "counts": counts}, T1)
    assert s["stage_posted"] == {"0": 1, "4": 1}
    assert s["prereleased"] == 1
    assert s["posted"] == 2


def test_register_part_sets_deadline_metadata_callback_and_created_at() -> None:
    s = state()
    register_part(
        s, part([item("a", 0)], deadline_at=456.5, metadata=METADATA, callback=CALLBACK), T1
    )
    assert s["deadline_at"] == 456.5
    assert s["metadata"] == METADATA
    assert s["callback"] == CALLBACK
    assert s["created_at"] == SUBMITTED


def test_register_part_without_submitted_at_keeps_created_at() -> None:
    s = state()
    register_part(s, part([item("a", 0)], submitted_at=None), T1)
    assert s["created_at"] == T0


def test_register_part_moves_accepted_to_in_progress() -> None:
    s = state()
    assert s["status"] == "accepted"
    register_part(s, part([item("a", 0)]), T1)
    assert s["status"] == "in_progress"


def test_register_part_is_idempotent_per_part_number() -> None:
    s = state()
    first = part([item("a", 0), item("b", 1)], 0, 2, metadata=METADATA)
    assert register_part(s, first, T1) is True
    before = {k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in s.items()}
    assert register_part(s, first, T2) is False
    # the same part number with other content is still the same part
    again = part([item("z", 9, stage=4)], 0, 2, metadata={"other": 1})
    assert register_part(s, again, T3) is False
    assert s == before
    assert s["posted"] == 2
    assert s["parts_received"] == [0]
    assert s["updated_at"] == T1


def test_register_parts_of_a_multi_part_batch_accumulate() -> None:
    s = state()
    assert register_part(s, part([item("a", 0), item("b", 1)], 0, 3), T1)
    assert register_part(s, part([item("c", 2, stage=1)], 1, 3), T2)
    assert register_part(s, part([item("d", 3), item("e", 4, stage=1)], 2, 3), T3)
    assert s["posted"] == 5
    assert s["parts"] == 3
    assert sorted(s["parts_received"]) == [0, 1, 2]
    assert s["stage_posted"] == {"0": 3, "1": 2}
    assert register_part(s, part([item("c", 2, stage=1)], 1, 3), T3) is False
    assert s["posted"] == 5


def test_a_part_in_pieces_is_received_with_its_last_piece_each_piece_counted_once() -> None:
    s = state()
    a, b, c = item("a", 0), item("b", 1, stage=1), item("c", 2)
    assert register_part(s, part([a], 0, 2, piece=0, pieces=3), T1)
    assert register_part(s, part([b], 0, 2, piece=1, pieces=3), T1)
    assert s["posted"] == 2 and s["parts_received"] == []
    # the exploder sends every piece again after a crash: those seen are not counted twice
    assert register_part(s, part([a], 0, 2, piece=0, pieces=3), T2) is False
    assert register_part(s, part([b], 0, 2, piece=1, pieces=3), T2) is False
    assert register_part(s, part([c], 0, 2, piece=2, pieces=3), T2)
    assert s["parts_received"] == [0]
    assert s["posted"] == 3 and s["stage_posted"] == {"0": 2, "1": 1}
    assert register_part(s, part([c], 0, 2, piece=2, pieces=3), T3) is False
    assert register_part(s, part([item("d", 3)], 1, 2), T3)
    assert s["posted"] == 4 and s["parts_received"] == [0, 1]
    assert aggregation.received_pieces(s) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert aggregation.piece_received(s, 0, 2) and not aggregation.piece_received(s, 1, 1)


def test_a_later_stage_waits_for_every_piece_of_every_part() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1, stage=1)], piece=0, pieces=2), T1)
    apply_result(s, result("a"), T2)
    assert release_next_stage(s) is None  # piece 1 may hold more stage-0 items
    assert status_record(s)["parts_received"] == 0
    register_part(s, part([item("c", 2)], piece=1, pieces=2), T2)
    assert release_next_stage(s) is None
    apply_result(s, result("c"), T3)
    assert release_next_stage(s) == 1
    assert status_record(s)["parts_received"] == 1


def test_a_state_stored_before_pieces_reads_each_part_received_as_one_piece() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1, stage=1)], 0, 3), T1)
    register_part(s, part([item("c", 2)], 2, 3), T1)
    s["cursor"]["pos"] = 1
    old = {key: value for key, value in s.items() if key != "pieces_received"}
    old["cursor"] = {key: value for key, value in s["cursor"].items() if key != "piece"}
    upgraded = aggregation.upgrade(old)
    assert upgraded == s
    assert aggregation.received_pieces(upgraded) == [(0, 0), (2, 0)]
    assert register_part(upgraded, part([item("a", 0)], 0, 3), T2) is False
    assert register_part(upgraded, part([item("d", 3)], 1, 3), T2)
    assert is_complete(upgraded) is False and upgraded["parts_received"] == [0, 2, 1]


def test_part_zero_sets_batch_fields_even_when_it_arrives_last() -> None:
    s = state()
    register_part(
        s,
        part([item("b", 1)], 1, 2, deadline_at=999.0, metadata={"from": "part1"}),
        T1,
    )
    # the first part seen provides the fields until part 0 arrives
    assert s["deadline_at"] == 999.0
    assert s["metadata"] == {"from": "part1"}
    register_part(
        s,
        part(
            [item("a", 0)],
            0,
            2,
            deadline_at=100.0,
            metadata=METADATA,
            callback=CALLBACK,
            submitted_at="2024-05-01T09:00:00Z",
        ),
        T2,
    )
    assert s["deadline_at"] == 100.0
    assert s["metadata"] == METADATA
    assert s["callback"] == CALLBACK
    assert s["created_at"] == "2024-05-01T09:00:00Z"


def test_a_later_part_does_not_override_part_zero_fields() -> None:
    s = state()
    register_part(s, part([item("a", 0)], 0, 2, deadline_at=100.0, metadata=METADATA), T1)
    register_part(s, part([item("b", 1)], 1, 2, deadline_at=555.0, metadata={"x": 1}), T2)
    assert s["deadline_at"] == 100.0
    assert s["metadata"] == METADATA


# --------------------------------------------------------------------------------------
# apply_result
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["succeeded", "failed", "skipped", "cancelled", "timed_out"])
def test_apply_result_counts_each_status(status: str) -> None:
    s = state()
    register_part(s, part([item("a", 0)]), T1)
    apply_result(s, result("a", status, errors=None if status == "succeeded" else ["why"]), T2)
    assert counters(s) == zero(posted=1, processed=1, **{status: 1})
    assert s["stage_done"] == {"0": 1}
    assert s["updated_at"] == T2
    if status == "succeeded":
        assert s["item_errors"] == {}
    else:
        assert s["item_errors"] == {"a": "why"}


def test_apply_result_counts_several_results() -> None:
    s = state()
    ids = ["a", "b", "c", "d", "e", "f"]
    register_part(s, part([item(x, i) for i, x in enumerate(ids)]), T1)
    statuses = ["succeeded", "succeeded", "failed", "skipped", "cancelled", "timed_out"]
    for x, st in zip(ids, statuses, strict=True):
        apply_result(s, result(x, st, errors=[f"{st}!"] if st != "succeeded" else None), T2)
    assert counters(s) == zero(
        posted=6, processed=6, succeeded=2, failed=1, skipped=1, cancelled=1, timed_out=1
    )
    assert s["item_errors"] == {
        "c": "failed!",
        "d": "skipped!",
        "e": "cancelled!",
        "f": "timed_out!",
    }


def test_apply_result_joins_error_texts() -> None:
    s = state()
    apply_result(s, result("a", "failed", errors=["boom", "HTTP 500", "retries exhausted"]), T1)
    assert s["item_errors"] == {"a": "boom; HTTP 500; retries exhausted"}


def test_apply_result_without_error_text_uses_the_status() -> None:
    s = state()
    apply_result(s, result("a", "failed", errors=[]), T1)
    r = result("b", "timed_out")
    r["errors"] = None
    apply_result(s, r, T1)
    assert s["item_errors"] == {"a": "failed", "b": "timed_out"}


def test_apply_result_counts_stage_done_per_stage() -> None:
    s = state()
    apply_result(s, result("a", stage=0), T1)
    apply_result(s, result("b", stage=2), T1)
    apply_result(s, result("c", "failed", stage=2, errors=["x"]), T1)
    # a request without a stage (absent or null) is stage 0, as the contract's default
    no_stage = result("d", stage=None)
    apply_result(s, no_stage, T1)
    no_request = result("e")
    no_request["request"] = None
    apply_result(s, no_request, T1)
    assert s["stage_done"] == {"0": 3, "2": 2}
    assert s["processed"] == 5


def test_apply_result_moves_accepted_to_in_progress() -> None:
    # a result may overtake its part
    s = state()
    apply_result(s, result("a"), T1)
    assert s["status"] == "in_progress"
    assert s["processed"] == 1
    assert s["succeeded"] == 1
    assert not is_complete(s)  # the parts are still unknown


def test_apply_result_unknown_status_counts_as_failed() -> None:
    s = state()
    r = result("a", "exploded", errors=["weird"])
    apply_result(s, r, T1)
    assert counters(s) == zero(processed=1, failed=1)
    assert s["item_errors"] == {"a": "weird"}


def test_item_errors_are_capped_and_flag_truncation() -> None:
    s = state()
    n = ITEM_ERRORS_CAP
    register_part(s, part([item(f"i{k}", k) for k in range(n + 5)]), T1)
    for k in range(n):
        apply_result(s, result(f"i{k}", "failed", errors=[f"err {k}"]), T2)
    assert len(s["item_errors"]) == n
    assert s["item_errors_truncated"] is False
    # successes do not trip the cap
    apply_result(s, result(f"i{n}"), T2)
    assert s["item_errors_truncated"] is False
    for k in range(n + 1, n + 5):
        apply_result(s, result(f"i{k}", "failed", errors=[f"err {k}"]), T2)
    assert len(s["item_errors"]) == n
    assert s["item_errors_truncated"] is True
    assert s["item_errors"]["i0"] == "err 0"
    assert s["item_errors"][f"i{n - 1}"] == f"err {n - 1}"
    assert f"i{n + 1}" not in s["item_errors"]
    # every result still counts
    assert s["failed"] == n + 4
    assert s["processed"] == n + 5


def test_item_errors_keep_long_messages_and_ids_within_their_budget() -> None:
    """A status must fit in one Kafka message whatever the items' errors and ids."""
    s = state()
    n = 20
    register_part(s, part([item(f"i{k}", k) for k in range(n)]), T1)
    apply_result(s, result("i0", "failed", errors=["x" * 50_000]), T2)
    assert s["item_errors"]["i0"] == "x" * (ITEM_ERROR_CHARS - 1) + "…"
    long_id = "L" * 40_000
    apply_result(s, result(long_id, "failed", errors=["short"]), T2)
    apply_result(s, result(long_id + "2", "failed", errors=["short"]), T2)  # past the budget
    assert set(s["item_errors"]) == {"i0", long_id}
    assert s["item_errors_truncated"] is True
    assert sum(len(k) + len(v) for k, v in s["item_errors"].items()) <= ITEM_ERRORS_CHARS
    assert s["failed"] == 3  # every result still counts


# --------------------------------------------------------------------------------------
# is_complete
# --------------------------------------------------------------------------------------


def test_single_part_batch_is_complete_after_all_results() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1)]), T1)
    assert not is_complete(s)
    apply_result(s, result("a"), T2)
    assert not is_complete(s)
    apply_result(s, result("b", "failed", errors=["no"]), T2)
    assert is_complete(s)


def test_multi_part_batch_needs_every_part() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1)], 0, 3), T1)
    register_part(s, part([item("c", 2)], 2, 3), T1)
    for x in ("a", "b", "c"):
        apply_result(s, result(x), T2)
    # two of three parts, all of their results: not complete
    assert s["processed"] == s["posted"] == 3
    assert not is_complete(s)
    register_part(s, part([item("d", 3)], 1, 3), T3)
    assert not is_complete(s)
    apply_result(s, result("d"), T3)
    assert is_complete(s)


@pytest.mark.parametrize("stop", ["cancel", "deadline"])
def test_a_stopped_batch_ends_without_the_parts_that_never_came(stop: str) -> None:
    """A part rejected by the exploder, or never sent, must not keep its batch running
    past a cancel or its deadline."""
    s = state()
    register_part(s, part([item("a", 0), item("b", 1)], 0, 2), T1)
    apply_result(s, result("a"), T2)
    assert request_cancel(s, T2) if stop == "cancel" else pass_deadline(s, T2)
    assert not is_complete(s)  # b has no result yet
    apply_result(s, result("b", "cancelled" if stop == "cancel" else "timed_out"), T3)
    assert is_complete(s)
    assert finish(s, T3) == ("cancelled" if stop == "cancel" else "timed_out")


def test_a_batch_whose_first_part_was_refused_is_rejected_and_final() -> None:
    s = state()
    error = {"code": "empty_parameter", "message": "items[0].action is empty", "details": []}
    callback = {"url": "https://example.test/done", "mode": "batch"}
    assert reject(s, error, callback, T1)
    assert s["status"] == "rejected" and is_final(s)
    assert s["rejection"] == {"code": "empty_parameter", "message": "items[0].action is empty"}
    assert s["finished_at"] == T1
    assert status_record(s)["status"] == "rejected" and s["callback"] == callback
    assert status_outcome(s)["error"] == s["rejection"]
    assert not reject(s, error, None, T2)  # once
    assert s["callback"] == callback


def test_a_refused_later_part_does_not_reject_a_running_batch() -> None:
    s = state()
    register_part(s, part([item("a", 0)], 0, 2), T1)
    assert not reject(s, {"code": "empty_parameter", "message": "x"}, None, T2)
    assert s["status"] == "in_progress"


def test_a_cancel_before_any_part_does_not_end_the_batch() -> None:
    """A cancel may overtake the batch's first part: the batch is not known yet."""
    s = state()
    assert request_cancel(s, T1)
    assert not is_complete(s)
    register_part(s, part([item("a", 0)]), T2)
    assert not is_complete(s)
    apply_result(s, result("a", "cancelled"), T3)
    assert is_complete(s)


def test_results_that_overtake_their_part_complete_once_it_arrives() -> None:
    s = state()
    apply_result(s, result("a"), T1)
    apply_result(s, result("b"), T1)
    assert not is_complete(s)
    register_part(s, part([item("a", 0), item("b", 1)]), T2)
    assert is_complete(s)
    assert finish(s, T3) == "completed"


# --------------------------------------------------------------------------------------
# final_status / finish
# --------------------------------------------------------------------------------------


def _ran(statuses: list[str]) -> dict[str, Any]:
    s = state()
    register_part(s, part([item(f"i{k}", k) for k in range(len(statuses))]), T1)
    for k, st in enumerate(statuses):
        apply_result(s, result(f"i{k}", st, errors=None if st == "succeeded" else ["x"]), T2)
    assert is_complete(s)
    return s


def test_finish_completed_when_every_item_succeeded() -> None:
    s = _ran(["succeeded", "succeeded", "succeeded"])
    assert final_status(s) == "completed"
    assert finish(s, T3) == "completed"
    assert s["status"] == "completed"
    assert s["finished_at"] == T3
    assert s["updated_at"] == T3
    assert is_final(s)


@pytest.mark.parametrize("other", ["failed", "skipped", "cancelled"])
def test_finish_completed_with_errors_when_any_item_did_not_succeed(other: str) -> None:
    s = _ran(["succeeded", other, "succeeded"])
    assert finish(s, T3) == "completed_with_errors"
    assert s["status"] == "completed_with_errors"
    assert is_final(s)


def test_finish_timed_out_when_an_item_timed_out_before_the_deadline_tick() -> None:
    # an item result is `timed_out` only because the batch deadline passed; processors may
    # see the deadline before the aggregator's tick marks it, and the batch still timed out
    s = _ran(["succeeded", "timed_out", "failed"])
    assert s["deadline_passed"] is False
    assert finish(s, T3) == "timed_out"
    assert s["status"] == "timed_out"
    assert is_final(s)


def test_finish_completed_with_errors_when_nothing_succeeded() -> None:
    s = _ran(["failed", "failed"])
    assert finish(s, T3) == "completed_with_errors"


def test_finish_cancelled_when_cancel_requested() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1)]), T1)
    apply_result(s, result("a"), T1)
    assert request_cancel(s, T2) is True
    assert s["cancel_requested"] is True
    assert s["updated_at"] == T2
    assert not is_final(s)  # cancelling is requested; the batch ends once all are reported
    apply_result(s, result("b", "cancelled", errors=["cancelled before start"]), T2)
    assert is_complete(s)
    assert finish(s, T3) == "cancelled"
    assert s["status"] == "cancelled"
    assert s["finished_at"] == T3


def test_finish_cancelled_even_when_every_item_succeeded() -> None:
    s = _ran(["succeeded", "succeeded"])
    request_cancel(s, T2)
    assert final_status(s) == "cancelled"


def test_finish_timed_out_when_deadline_passed() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1)]), T1)
    apply_result(s, result("a"), T1)
    assert pass_deadline(s, T2) is True
    assert s["deadline_passed"] is True
    assert s["updated_at"] == T2
    apply_result(s, result("b", "timed_out", errors=["deadline"]), T2)
    assert is_complete(s)
    assert finish(s, T3) == "timed_out"
    assert s["status"] == "timed_out"


def test_cancel_wins_over_deadline() -> None:
    s = state()
    register_part(s, part([item("a", 0)]), T1)
    assert request_cancel(s, T2)
    assert pass_deadline(s, T2)
    assert final_status(s) == "cancelled"


def test_request_cancel_false_when_repeated_or_final() -> None:
    s = state()
    register_part(s, part([item("a", 0)]), T1)
    assert request_cancel(s, T1) is True
    assert request_cancel(s, T2) is False
    assert s["updated_at"] == T1

    done = _ran(["succeeded"])
    finish(done, T2)
    assert request_cancel(done, T3) is False
    assert done["cancel_requested"] is False
    assert done["status"] == "completed"
    assert done["updated_at"] == T2


def test_pass_deadline_false_when_repeated_or_final() -> None:
    s = state()
    register_part(s, part([item("a", 0)]), T1)
    assert pass_deadline(s, T1) is True
    assert pass_deadline(s, T2) is False
    assert s["updated_at"] == T1

    done = _ran(["failed"])
    finish(done, T2)
    assert pass_deadline(done, T3) is False
    assert done["deadline_passed"] is False
    assert done["status"] == "completed_with_errors"
    assert done["updated_at"] == T2


@pytest.mark.parametrize("final", sorted(aggregation.FINAL_STATUSES))
def test_final_statuses_refuse_cancel_and_deadline(final: str) -> None:
    s = state()
    s["status"] = final
    assert is_final(s)
    assert request_cancel(s, T1) is False
    assert pass_deadline(s, T1) is False


@pytest.mark.parametrize("status", ["accepted", "in_progress"])
def test_running_statuses_are_not_final(status: str) -> None:
    s = state()
    s["status"] = status
    assert not is_final(s)


# --------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------


def _staged() -> dict[str, Any]:
    """One part: two stage-0 items, one stage-1 item, one stage-2 item."""
    s = state()
    items = [item("a", 0), item("b", 1), item("c", 2, stage=1), item("d", 3, stage=2)]
    register_part(s, part(items), T1)
    return s


def test_stage_zero_is_never_released_by_the_aggregator() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1)]), T1)
    assert release_next_stage(s) is None
    apply_result(s, result("a"), T2)
    apply_result(s, result("b"), T2)
    assert release_next_stage(s) is None
    assert s["released_stage"] == 0
    assert unreleased_stages(s) == []


def test_stages_release_one_after_another() -> None:
    s = _staged()
    assert unreleased_stages(s) == [1, 2]
    # stage 0 still has results to come
    assert release_next_stage(s) is None
    apply_result(s, result("a"), T2)
    assert release_next_stage(s) is None
    apply_result(s, result("b", "failed", errors=["x"]), T2)
    # stage 1 once every stage-0 item has a result (failed ones count as results);
    # stage 2 is not released in the same call
    assert release_next_stage(s) == 1
    assert s["released_stage"] == 1
    assert unreleased_stages(s) == [2]
    # released once
    assert release_next_stage(s) is None
    apply_result(s, result("c", stage=1), T3)
    assert release_next_stage(s) == 2
    assert s["released_stage"] == 2
    assert unreleased_stages(s) == []
    assert release_next_stage(s) is None
    apply_result(s, result("d", stage=2), T3)
    assert release_next_stage(s) is None
    assert is_complete(s)


def test_release_returns_at_most_one_stage_per_call() -> None:
    # stages 1 and 2 whose lower stages are all done (stage 1 counted from results that
    # overtook their part): still one stage per call
    s = state()
    apply_result(s, result("a"), T1)
    apply_result(s, result("c", stage=1), T1)
    register_part(s, part([item("a", 0), item("c", 1, stage=1), item("d", 2, stage=2)]), T2)
    assert release_next_stage(s) == 1
    assert release_next_stage(s) == 2
    assert release_next_stage(s) is None


def test_later_stage_waits_for_every_part() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("c", 1, stage=1)], 0, 2), T1)
    apply_result(s, result("a"), T2)
    # every stage-0 item seen so far has a result, but part 1 may hold more stage-0 items
    assert release_next_stage(s) is None
    register_part(s, part([item("b", 2)], 1, 2), T2)
    assert release_next_stage(s) is None
    apply_result(s, result("b"), T3)
    assert release_next_stage(s) == 1


def test_stage_gaps_are_skipped() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("e", 1, stage=5)]), T1)
    apply_result(s, result("a"), T2)
    assert release_next_stage(s) == 5


def test_batch_with_only_stages_one_and_two_releases_stage_one_once_all_parts_arrived() -> None:
    s = state()
    register_part(s, part([item("a", 0, stage=1)], 0, 2), T1)
    assert release_next_stage(s) is None  # part 1 missing (it may hold lower stages)
    register_part(s, part([item("b", 1, stage=2)], 1, 2), T2)
    assert unreleased_stages(s) == [1, 2]
    assert release_next_stage(s) == 1
    assert release_next_stage(s) is None
    apply_result(s, result("a", stage=1), T3)
    assert release_next_stage(s) == 2


def test_nothing_released_after_cancel() -> None:
    s = _staged()
    apply_result(s, result("a"), T2)
    apply_result(s, result("b"), T2)
    request_cancel(s, T2)
    assert release_next_stage(s) is None
    assert s["released_stage"] == 0
    assert unreleased_stages(s) == [1, 2]


def test_nothing_released_after_deadline() -> None:
    s = _staged()
    apply_result(s, result("a"), T2)
    apply_result(s, result("b"), T2)
    assert release_next_stage(s) == 1
    pass_deadline(s, T2)
    apply_result(s, result("c", stage=1), T3)
    assert release_next_stage(s) is None
    assert unreleased_stages(s) == [2]


def test_unreleased_stages_lists_only_stages_above_the_released_one() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1, stage=3), item("c", 2, stage=1)]), T1)
    assert unreleased_stages(s) == [1, 3]
    s["released_stage"] = 1
    assert unreleased_stages(s) == [3]
    s["released_stage"] = 3
    assert unreleased_stages(s) == []
    assert unreleased_stages(state()) == []


# --------------------------------------------------------------------------------------
# status_record
# --------------------------------------------------------------------------------------

RECORD_FIELDS = {
    "batch_id",
    "tenant",
    "status",
    "counters",
    "item_errors",
    "item_errors_truncated",
    "parts",
    "parts_received",
    "metadata",
    "callback",
    "created_at",
    "updated_at",
    "finished_at",
    "deadline_at",
}


def test_status_record_of_a_running_batch() -> None:
    s = state()
    register_part(
        s,
        part(
            [item("a", 0), item("b", 1)],
            0,
            2,
            deadline_at=1714557600.0,
            metadata=METADATA,
            callback=CALLBACK,
        ),
        T1,
    )
    apply_result(s, result("a", "failed", errors=["HTTP 503", "gave up"]), T2)
    rec = status_record(s)
    assert set(rec) == RECORD_FIELDS
    assert rec["batch_id"] == "b-1"
    assert rec["tenant"] == "acme"
    assert rec["status"] == "in_progress"
    assert rec["counters"] == {
        "posted": 2,
        "processed": 1,
        "succeeded": 0,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
        "timed_out": 0,
    }
    assert rec["item_errors"] == {"a": "HTTP 503; gave up"}
    assert rec["item_errors_truncated"] is False
    assert rec["parts"] == 2
    assert rec["parts_received"] == 1
    assert rec["metadata"] == METADATA
    assert rec["callback"] == CALLBACK
    assert rec["created_at"] == SUBMITTED
    assert rec["updated_at"] == T2
    assert rec["finished_at"] is None
    assert rec["deadline_at"] == 1714557600.0


def test_status_record_of_a_fresh_batch() -> None:
    rec = status_record(state())
    assert set(rec) == RECORD_FIELDS
    assert rec["status"] == "accepted"
    assert rec["counters"] == zero()
    assert rec["parts"] == 1  # unknown yet: reported as one
    assert rec["parts_received"] == 0
    assert rec["finished_at"] is None
    assert rec["deadline_at"] is None


def test_status_record_of_a_finished_batch() -> None:
    s = _ran(["succeeded", "succeeded"])
    finish(s, T3)
    rec = status_record(s)
    assert rec["status"] == "completed"
    assert rec["finished_at"] == T3
    assert rec["counters"] == zero(posted=2, processed=2, succeeded=2)


def test_status_record_item_errors_is_a_copy() -> None:
    s = state()
    apply_result(s, result("a", "failed", errors=["x"]), T1)
    rec = status_record(s)
    rec["item_errors"]["zzz"] = "injected"
    assert "zzz" not in s["item_errors"]


def test_status_record_encodes_as_batch_status() -> None:
    s = state()
    register_part(s, part([item("a", 0)], metadata=METADATA, callback=CALLBACK), T1)
    apply_result(s, result("a", "skipped", errors=["earlier item failed"]), T2)
    finish(s, T3)
    rec = status_record(s)
    decoded = codec.decode_as("BatchStatus", codec.encode("BatchStatus", rec))
    assert decoded["status"] == "completed_with_errors"
    assert decoded["counters"] == rec["counters"]
    assert decoded["item_errors"] == {"a": "earlier item failed"}
    assert decoded["metadata"] == METADATA
    assert decoded["callback"] == CALLBACK
    assert decoded["parts"] == 1
    assert decoded["parts_received"] == 1
    assert decoded["deadline_at"] == 123.0


# --------------------------------------------------------------------------------------
# The release window
# --------------------------------------------------------------------------------------

WINDOW = aggregation.RELEASE_WINDOW


def test_the_exploder_sends_only_the_ungrouped_head_of_stage_zero() -> None:
    def placed(index: int, stage: int = 0, grouped: bool = False) -> ledger_pieces.PieceItem:
        return ledger_pieces.PieceItem(index, stage, grouped, b"key", b"body")

    assert aggregation.prereleased(placed(0), WINDOW)
    assert aggregation.prereleased(placed(WINDOW - 1), WINDOW)
    assert not aggregation.prereleased(placed(WINDOW), WINDOW)
    assert not aggregation.prereleased(placed(1, grouped=True), WINDOW)
    assert not aggregation.prereleased(placed(2, stage=1), WINDOW)


def test_the_prereleased_count_follows_the_window_the_part_was_exploded_with() -> None:
    """Whatever the aggregator's own window, it counts what the exploder sent: the
    window the part event carries, or the one of every exploder before that field."""
    items = [item(f"i{i}", i) for i in range(300)]
    small, legacy = state(), state()
    register_part(small, part(items, below=100), T1)
    assert small["prereleased"] == 100
    assert aggregation.release_room(small, 100) == 0
    assert aggregation.release_room(small, 250) == 150
    register_part(legacy, part([item(f"i{i}", i) for i in range(2010)], below=None), T1)
    assert legacy["prereleased"] == 2000  # not today's default window


def test_release_room_opens_when_half_the_window_has_results() -> None:
    s = state()
    register_part(s, part([item(f"i{i}", i) for i in range(WINDOW + 500)]), T1)
    assert s["prereleased"] == WINDOW
    assert aggregation.release_room(s, WINDOW) == 0  # the whole window is in flight
    for i in range(WINDOW // 2 - 1):
        apply_result(s, result(f"i{i}"), T2)
    assert aggregation.release_room(s, WINDOW) == 0
    apply_result(s, result("last"), T2)
    assert aggregation.release_room(s, WINDOW) == WINDOW // 2
    s["cursor"]["released"] += WINDOW // 2
    assert aggregation.release_room(s, WINDOW) == 0


def test_release_room_is_zero_once_a_batch_stops() -> None:
    s = state()
    register_part(s, part([item("a", 0, group="g")]), T1)
    assert aggregation.release_room(s, WINDOW) == WINDOW
    request_cancel(s, T2)
    assert aggregation.release_room(s, WINDOW) == 0


def test_a_released_stage_starts_from_a_fresh_cursor() -> None:
    s = state()
    register_part(s, part([item("a", 0), item("b", 1, stage=1)]), T1)
    s["cursor"].update(part=1, released=1)
    apply_result(s, result("a"), T2)
    assert release_next_stage(s) == 1
    assert s["cursor"] == aggregation.new_cursor(1)
    assert aggregation.release_room(s, WINDOW) == WINDOW
