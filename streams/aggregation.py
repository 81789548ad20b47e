"""A batch's state and how events change it: pure functions over a plain dict.

The aggregator agent (`streams.agents.aggregate`) keeps one such dict per batch in a
rocksdict-backed Faust table and calls these functions; they do no I/O, so every rule of the
contract about counters, statuses and stages is tested here without Kafka.

Counting exactly once is the agent's job (it deduplicates by item and by source offset);
these functions assume each result they are handed is new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.ledger_pieces import PieceItem

State = dict[str, Any]

ITEM_ERRORS_CAP = 100
#: `item_errors` keeps at most this many characters of one item's errors, and of all its
#: item ids and messages together: every status and final callback carries it, and one
#: message must fit in a Kafka message (the full errors are in the item's result)
ITEM_ERROR_CHARS = 1000
ITEM_ERRORS_CHARS = 64 * 1024
FINAL_STATUSES = frozenset(
    {"completed", "completed_with_errors", "cancelled", "timed_out", "rejected"}
)
COUNTERS = ("posted", "processed", "succeeded", "failed", "skipped", "cancelled", "timed_out")
ITEM_STATUS_COUNTER = {
    "succeeded": "succeeded",
    "failed": "failed",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "timed_out": "timed_out",
}


def new_state(tenant: str, batch_id: str, now: str) -> State:
    """A batch seen for the first time (by a part, or by a result that overtook its part)."""
    return {
        "tenant": tenant,
        "batch_id": batch_id,
        "status": "accepted",
        "parts": None,
        "parts_received": [],
        "pieces_received": {},
        **dict.fromkeys(COUNTERS, 0),
        "item_errors": {},
        "item_errors_truncated": False,
        "stage_posted": {},
        "stage_done": {},
        "released_stage": 0,
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
        "deadline_at": None,
        "metadata": None,
        "callback": None,
        "cancel_requested": False,
        "deadline_passed": False,
        "applied": {},
        "early_results": [],
        "prereleased": 0,
        "cursor": new_cursor(0),
    }


#: Items of one batch sent to the processors and still without a result, at most: the
#: default of the worker's `--release-window`. A big batch is fed to `batchwire.items` in
#: slices as its results come back, so another batch (another tenant's) never queues behind
#: more than this many of its items, nor behind more than this many of its results on a
#: shared partition of `batchwire.results`. 500 rather than 2,000 (2026-12-02, one worker):
#: the same items/s for a 100,000-item batch, and another tenant's small batches' p99 while
#: it runs 554 / 1,111 ms against 1,401 / 1,582 (bench/README.md, the release window trade).
RELEASE_WINDOW = 500
#: The window of a batch while small batches run on the same worker (`streams.small_batches`,
#: the worker's `--shared-window`).
SHARED_RELEASE_WINDOW = 128

#: The window of every exploder before parts carried theirs (`prerelease_below`).
LEGACY_RELEASE_WINDOW = 2000


def new_cursor(stage: int) -> dict[str, int]:
    """Where the aggregator's release of `stage` has got to: part and piece number, position
    in the piece, items released."""
    return {"stage": stage, "part": 0, "piece": 0, "pos": 0, "released": 0}


def upgrade(state: State) -> State:
    """A state stored before parts reached the aggregator in pieces: each part it received
    was one piece."""
    if "pieces_received" not in state:
        state["pieces_received"] = {str(part): [0] for part in state["parts_received"]}
        state["cursor"].setdefault("piece", 0)
    return state


def prereleased(item: PieceItem, below: int) -> bool:
    """Items the exploder sends straight away (the head of stage 0 up to index `below`,
    its release window, outside any group); the aggregator releases every other item. A
    group's items all come from the aggregator, so they reach `batchwire.items` in order."""
    return item.stage == 0 and item.index < below and not item.grouped


def piece_counts(items: Iterable[PieceItem], below: int) -> dict[str, Any]:
    """What registering a part's piece counts of its items: how many of each stage, and how
    many the exploder sent at once (`prereleased`). The piece carries them (`counts`), so
    the aggregator need not walk its items to register it."""
    stage_posted: dict[str, int] = {}
    head = 0
    for item in items:
        stage = str(item.stage)
        stage_posted[stage] = stage_posted.get(stage, 0) + 1
        head += prereleased(item, below)
    return {"stage_posted": stage_posted, "prereleased": head}


def prerelease_below(part: Mapping[str, Any]) -> int:
    """The release window of the exploder that sent `part` (its ledger event says), so the
    aggregator knows which items went out at once whatever its own window is."""
    return int(part.get("prerelease_below", LEGACY_RELEASE_WINDOW))


def release_room(state: State, window: int) -> int:
    """How many more items of the released stage may go out now under `window`: 0 while
    more than half the window is in flight (items go out in slices, not one per result)."""
    if is_final(state) or state["cancel_requested"] or state["deadline_passed"]:
        return 0
    cursor = state["cursor"]
    stage = cursor["stage"]
    released = cursor["released"] + (state["prereleased"] if stage == 0 else 0)
    in_flight = released - state["stage_done"].get(str(stage), 0)
    room = window - in_flight
    return room if room * 2 >= window else 0


def is_final(state: State) -> bool:
    return state["status"] in FINAL_STATUSES


def register_part(state: State, part: dict[str, Any], now: str) -> bool:
    """Count the items of a part's piece (the fields of a `ledger_pieces.Piece`) as posted;
    False when this piece was registered before. The part counts as received with its last
    piece."""
    received = state["pieces_received"].setdefault(str(part["part"]), [])
    if part["piece"] in received:
        return False
    received.append(part["piece"])
    if len(received) >= part["pieces"]:
        state["parts_received"].append(part["part"])
    state["parts"] = part["parts"]
    state["posted"] += part["size"]
    counts = part["counts"]
    stage_posted = state["stage_posted"]
    for stage, count in counts["stage_posted"].items():
        stage_posted[stage] = stage_posted.get(stage, 0) + count
    state["prereleased"] += counts["prereleased"]
    if part["part"] == 0 or state["deadline_at"] is None:
        state["deadline_at"] = part["deadline_at"]
        state["metadata"] = part["metadata"]
        state["callback"] = part["callback"]
        state["created_at"] = part.get("submitted_at") or state["created_at"]
    if state["status"] == "accepted":
        state["status"] = "in_progress"
    state["updated_at"] = now
    return True


def result_stage(result: Mapping[str, Any]) -> int:
    """The stage of an `ItemResult`'s item (0 when its request says none)."""
    stage: int = (result.get("request") or {}).get("stage") or 0
    return stage


def apply_result(state: State, result: dict[str, Any], now: str) -> None:
    """Count one new item result (`count_result`), and its errors when it failed."""
    count_result(state, result["status"], result_stage(result), now)
    if not result["success"]:
        errors = state["item_errors"]
        message = "; ".join(result.get("errors") or []) or result["status"]
        if len(message) > ITEM_ERROR_CHARS:
            message = message[: ITEM_ERROR_CHARS - 1] + "…"
        item_id = result["item_id"]
        used = sum(len(k) + len(v) for k, v in errors.items())
        if (
            len(errors) < ITEM_ERRORS_CAP
            and used + len(item_id) + len(message) <= ITEM_ERRORS_CHARS
        ):
            errors[item_id] = message
        else:
            state["item_errors_truncated"] = True


def count_result(state: State, status: str, stage: int, now: str) -> None:
    """Count one new item result of `status` from `stage`: all that a result that succeeded
    changes (the aggregator counts those without decoding them)."""
    state["processed"] += 1
    state[ITEM_STATUS_COUNTER.get(status, "failed")] += 1
    done = state["stage_done"]
    done[str(stage)] = done.get(str(stage), 0) + 1
    if state["status"] == "accepted":
        state["status"] = "in_progress"
    state["updated_at"] = now


def piece_received(state: State, part: int, piece: int) -> bool:
    return piece in state["pieces_received"].get(str(part), ())


def received_pieces(state: State) -> list[tuple[int, int]]:
    """`(part, piece)` of every piece registered, in submission order."""
    return sorted(
        (int(part), piece) for part, pieces in state["pieces_received"].items() for piece in pieces
    )


def all_parts_arrived(state: State) -> bool:
    return state["parts"] is not None and len(state["parts_received"]) >= state["parts"]


def is_complete(state: State) -> bool:
    """Every posted item has a result, and every part has arrived or the batch was stopped
    (cancelled, or past its deadline): a stopped batch does not wait for parts that never
    came (rejected, or never sent), or it would never end. A part that arrives after the
    batch ended is still counted, its items reported cancelled or timed out."""
    if state["parts"] is None or state["processed"] < state["posted"]:
        return False
    return all_parts_arrived(state) or state["cancel_requested"] or state["deadline_passed"]


def release_next_stage(state: State) -> int | None:
    """The stage released now, if its lower stages all have results (marked released); else
    None. One stage at a time: the next waits for this one's results.

    Stage 0 is released as parts arrive. A later stage waits for every part, since a part
    still to come may hold items of a lower stage. A released stage's items go out through
    the window (`release_room`), from a fresh cursor.
    """
    if not all_parts_arrived(state) or state["cancel_requested"] or state["deadline_passed"]:
        return None
    stages = sorted(int(s) for s in state["stage_posted"])
    for stage in stages:
        if stage <= state["released_stage"]:
            continue
        lower_done = all(
            state["stage_done"].get(str(s), 0) >= state["stage_posted"][str(s)]
            for s in stages
            if s < stage
        )
        if not lower_done:
            return None
        state["released_stage"] = stage
        state["cursor"] = new_cursor(stage)
        return stage
    return None


def unreleased_stages(state: State) -> list[int]:
    """Stages whose items were never sent to a processor."""
    return sorted(int(s) for s in state["stage_posted"] if int(s) > state["released_stage"])


def reject(
    state: State, error: Mapping[str, Any], callback: Mapping[str, str] | None, now: str
) -> bool:
    """Mark a batch whose first part failed validation `rejected` (it never runs), with the
    submission's valid callback, if any; False when the batch has a part already (a later
    part's rejection does not end it)."""
    if state["parts"] is not None or is_final(state):
        return False
    state["status"] = "rejected"
    state["rejection"] = {"code": error.get("code"), "message": error.get("message")}
    state["callback"] = dict(callback) if callback else None
    state["finished_at"] = state["updated_at"] = now
    return True


def request_cancel(state: State, now: str) -> bool:
    """Mark a running batch cancelled; False when it has already ended or was cancelled."""
    if is_final(state) or state["cancel_requested"]:
        return False
    state["cancel_requested"] = True
    state["updated_at"] = now
    return True


def pass_deadline(state: State, now: str) -> bool:
    """Mark a running batch past its deadline; False when nothing changes."""
    if is_final(state) or state["deadline_passed"]:
        return False
    state["deadline_passed"] = True
    state["updated_at"] = now
    return True


def final_status(state: State) -> str:
    if state["cancel_requested"]:
        return "cancelled"
    if state["deadline_passed"] or state["timed_out"]:
        return "timed_out"  # processors may see the deadline before the aggregator's tick
    if state["succeeded"] == state["posted"]:
        return "completed"
    return "completed_with_errors"


def finish(state: State, now: str) -> str:
    state["status"] = final_status(state)
    state["finished_at"] = now
    state["updated_at"] = now
    return str(state["status"])


def status_outcome(state: State) -> dict[str, Any]:
    """The status as the client sees it (a lookup, the final callback): its `BatchStatus`
    and, when its submission was rejected, the error."""
    record = status_record(state)
    if state.get("rejection"):
        record["error"] = state["rejection"]
    return record


def status_record(state: State) -> dict[str, Any]:
    """The `BatchStatus` message and the body of `GET /v1/batches/{id}`."""
    return {
        "batch_id": state["batch_id"],
        "tenant": state["tenant"],
        "status": state["status"],
        "counters": {name: state[name] for name in COUNTERS},
        "item_errors": dict(state["item_errors"]),
        "item_errors_truncated": state["item_errors_truncated"],
        "parts": state["parts"] or 1,
        "parts_received": len(state["parts_received"]),
        "metadata": state["metadata"],
        "callback": state["callback"],
        "created_at": state["created_at"],
        "updated_at": state["updated_at"],
        "finished_at": state["finished_at"],
        "deadline_at": state["deadline_at"],
    }
