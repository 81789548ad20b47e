"""The aggregator: ledger events (parts, result bundles, cancels) -> batch state, status,
callbacks.

It reads the internal `batchwire.ledger` (keyed by `batch_id`, co-partitioned with its
tables) in small chunks, so a busy batch's state is read and written once per chunk, not
once per item. Results come on the ledger in bundles per batch (`streams.result_bundles`);
the same results are on `batchwire.results`, one by one, for downstream consumers.

Exactly-once counting without Kafka transactions (faust's `exactly_once` mode has open
bugs), by idempotent aggregation:
- each batch state remembers, per ledger partition, the offset of the last event applied;
  an event at or below it is a redelivery after a crash and is not counted again;
- each item result is stored (in its block of results, `streams.stored_results`) with the
  offset of the bundle that stored it; a second result for the same item (an item that ran
  twice), from another bundle or later in the same one, is not counted.
A redelivered event still re-writes its stored result and re-emits its outputs (callbacks
keep their ids, status is compacted), so a crash between the writes of one event loses
nothing: tables and outputs are flushed before offsets are committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from weakref import ref

import faust
from faust.streams import _current_event

from streams import aggregation, codec, ledger_pieces, registrations, stored_parts, stored_results
from streams.aggregation import State
from streams.app import app
from streams.batch_urls import batch_urls
from streams.bundled_results import BundledResult, bundled, is_results_bundle, unpack_results
from streams.chunks import take_chunks
from streams.clock import iso
from streams.controls import (
    add_failed_group,
    control_keys,
    control_record,
    group_page_key,
    page_record,
)
from streams.errors import CodecError
from streams.expiry import Expiries
from streams.keys import batch_key, split_batch_key
from streams.ledger_pieces import Piece
from streams.messages import (
    batch_callback,
    decode_event,
    encode_event,
    item_callback,
    unrun_result,
)
from streams.metrics import metrics
from streams.options import options
from streams.publish import RecordBatches, publish, stop_worker
from streams.result_bundles import publish_bundle, split_bundles
from streams.small_batches import small_batches
from streams.stored_results import ResultBlocks
from streams.tables import (
    active_batches,
    batch_state,
    finished_batches,
)
from streams.topics import callbacks, controls, items, ledger, status

log = logging.getLogger(__name__)
CHUNK_MAX = 500
TICK_INTERVAL_S = 1.0
#: a final callback carries its batch's results inline up to this many bytes of them (as
#: Avro; more as JSON), else their URL: a callback must fit in one Kafka message
INLINE_RESULTS_BYTES = 1024 * 1024
#: running batches, by the time of their sweep when one is set, else of their deadline
due = Expiries(
    active_batches,
    lambda entry: entry["deadline_at"] if entry.get("sweep_at") is None else entry["sweep_at"],
)
#: ended batches, by the time their retention ends
finished = Expiries(
    finished_batches, lambda entry: entry["finished_at"] + options.retention_days * 86400
)


@contextmanager
def in_event(event: faust.EventT) -> Iterator[None]:
    """Make `event` the current one, so table writes go to its changelog partition."""
    token = _current_event.set(ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


#: Faust stalls every stream (and logs two lines per message) while more than this many
#: table writes wait in its producer buffer; its default of 100 is below one chunk's writes.
TABLE_WRITES_BUFFERED = 4 * CHUNK_MAX


@app.agent(ledger, name="aggregate")
async def aggregate(stream: faust.StreamT[bytes]) -> None:
    app.producer.buffer.max_messages = TABLE_WRITES_BUFFERED
    async for events in take_chunks(cast(faust.Stream[bytes], stream), CHUNK_MAX):
        chunk = Chunk()
        try:
            for event in events:
                with in_event(event):
                    await chunk.handle(event)
            await chunk.close()
        except Exception as exc:
            # Not bad input (that is skipped in `handle`) but a fault: stop rather than ack
            # events whose effects were not written; after a restart they are redelivered.
            await stop_worker(exc, f"aggregating a chunk ending at {_event_id(events[-1])}")
            return


@app.timer(TICK_INTERVAL_S)
async def tick() -> None:
    """Deadlines and sweeps need a clock inside the stream: send each owned ledger
    partition a tick, handled in that partition's order like any event."""
    name = ledger.get_topic_name()
    for tp in app.consumer.assignment():
        if tp.topic == name:
            await publish(ledger, b"", encode_event({"type": "tick"}), tp.partition)


class Chunk:
    """The batches touched by one chunk of events, written back once at its end."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[State, faust.EventT]] = {}
        self.changed: set[str] = set()
        #: batches whose current page of failed groups changed (`streams.controls`)
        self.group_pages: set[str] = set()
        self.results = ResultBlocks()

    def state(self, tenant: str, batch_id: str, event: faust.EventT) -> State:
        key = batch_key(tenant, batch_id)
        held = self.states.get(key)
        if held:
            state = held[0]
        else:
            stored = _stored_state(key)
            state = stored if stored is not None else aggregation.new_state(tenant, batch_id, iso())
        self.states[key] = (state, event)
        return state

    async def handle(self, event: faust.EventT) -> None:
        value: bytes = event.value
        if is_results_bundle(value):
            await self.on_results(value, event)
            return
        try:
            part, message = _read_ledger_event(value)
        except (ValueError, KeyError, CodecError) as exc:
            log.error("skipping an unreadable message at %s: %s", _event_id(event), exc)
            return
        if part is not None:
            await self.on_part(part, value, event)
            return
        kind = message.get("type")
        if kind == "accepted":
            self.on_accepted(message, event)
        elif kind == "cancel":
            await self.on_cancel(message, event)
        elif kind == "rejected":
            await self.on_rejected(message, event)
        elif kind == "tick":
            await self.on_tick(event)
        else:
            log.warning("ignoring a ledger event of unknown type %r", kind)

    @staticmethod
    def _seen(state: State, event: faust.EventT) -> bool:
        """True when this event was applied before (a redelivery); else records it."""
        msg = event.message
        where = f"{msg.topic}:{msg.partition}"
        if state["applied"].get(where, -1) >= msg.offset:
            return True
        state["applied"][where] = msg.offset
        return False

    def _reopened(self, state: State, event: faust.EventT) -> State:
        """A new batch in place of a rejected one: a part or a result under a rejected
        batch's id is of a valid submission that reused it (a rejected batch never ran).
        Its results may come before its part (`on_part`), and must count in the new batch."""
        if state["status"] != "rejected":
            return state
        key = batch_key(state["tenant"], state["batch_id"])
        state = aggregation.new_state(state["tenant"], state["batch_id"], iso())
        self.states[key] = (state, event)
        finished_batches.pop(key, None)
        return state

    async def on_results(self, data: bytes, event: faust.EventT) -> None:
        """A bundle of results of one batch (`streams.bundled_results`)."""
        try:
            bundle = unpack_results(data)
        except ValueError as exc:
            log.error("skipping an unreadable results event at %s: %s", _event_id(event), exc)
            return
        if bundle is None:
            return
        state = self._reopened(self.state(bundle.tenant, bundle.batch_id, event), event)
        replay = self._seen(state, event)
        now = iso()
        indexes: set[int] = set()  # an item that ran twice can have both results in a bundle
        for result in bundle.results:
            if result.index in indexes:
                continue
            indexes.add(result.index)
            await self._count(state, result, event, replay, now)
        await self._advance(state, event)

    async def _count(
        self, state: State, result: BundledResult, event: faust.EventT, replay: bool, now: str
    ) -> None:
        """Store a result and count it, unless its item has a result from another event.
        Only a result that did not succeed is decoded: its errors and group count too."""
        tenant, batch_id = state["tenant"], state["batch_id"]
        offset = event.message.offset
        stored_by = self.results.offset(tenant, batch_id, result.index)
        if stored_by is not None and stored_by != offset:
            return  # the item ran twice: its first result counts
        unsuccessful: dict[str, Any] | None = None
        if result.status != "succeeded" and not replay:
            try:
                # its JSON fields (params, output) unparsed: counting does not read them
                unsuccessful = codec.decode_as("ItemResult", result.raw, parse_json=False)
            except CodecError as exc:
                log.error("skipping an unreadable result at %s: %s", _event_id(event), exc)
                return
        self.results.put(tenant, batch_id, result.index, offset, result.raw, event)
        if not replay:
            if unsuccessful is None:
                aggregation.count_result(state, result.status, result.stage, now)
            else:
                aggregation.apply_result(state, unsuccessful, now)
                await self._stop_group(state, unsuccessful)
            self.changed.add(batch_key(tenant, batch_id))
        if not state["parts_received"]:
            # Its batch's callback is not known yet: results can run ahead of the batch's
            # part on the ledger. `on_part` sends the item callback once the part arrives.
            if not replay:
                state.setdefault("early_results", []).append(result.index)
        else:
            await self._item_callback(state, result.raw)

    async def _stop_group(self, state: State, result: dict[str, Any]) -> None:
        """A failed item of a group stops the rest of its group (unless the batch said
        `stop_on_failure: false`): the processors skip them (`streams.controls`)."""
        group = result["request"].get("group")
        if result["status"] != "failed" or group is None or not _stop_on_failure(state):
            return
        key = batch_key(state["tenant"], state["batch_id"])
        full = add_failed_group(state, group)
        if full is not None:
            page, groups = full
            await publish(
                controls, group_page_key(key, page).encode(), encode_event(page_record(groups))
            )
        self.group_pages.add(key)  # the current page: published once, when the chunk ends

    async def _item_callback(self, state: State, raw: bytes) -> None:
        callback = state["callback"]
        if callback and callback.get("mode") in ("item", "both"):
            result = codec.decode_as("ItemResult", raw)
            message = item_callback(result, callback["url"], state["created_at"])
            await publish(
                callbacks, state["batch_id"].encode(), codec.encode("CallbackRequested", message)
            )

    async def on_part(self, part: dict[str, Any], raw: bytes, event: faust.EventT) -> None:
        """A part's piece (its fields: `ledger_pieces.decode_fields`) arrived."""
        tenant, batch_id = part["tenant"], part["batch_id"]
        state = self._reopened(self.state(tenant, batch_id, event), event)
        key = batch_key(tenant, batch_id)
        number = part["piece"]
        if self._seen(state, event):
            # this event again, after a crash: its writes may not all have landed (a copy's
            # must not replace the piece stored first, see `_send_head_left_out`)
            if stored_parts.get(tenant, batch_id, part["part"], number) is None:
                stored_parts.put(tenant, batch_id, part["part"], number, raw)
        elif not aggregation.register_part(state, part, iso()):
            await self._send_head_left_out(part)  # a copy from an exploder that ran it again
        else:
            stored_parts.put(tenant, batch_id, part["part"], number, raw)
            state["stop_on_failure"] = part["stop_on_failure"]
            self.changed.add(key)
            if not aggregation.is_final(state):  # a part after the end does not run again
                entry = active_batches.get(key)  # a sweep due after a cancel or deadline stays
                sweep_at = entry.get("sweep_at") if entry else None
                due.put(key, {"deadline_at": part["deadline_at"], "sweep_at": sweep_at})
            if state["cancel_requested"] or state["deadline_passed"]:
                await self._report_unrun(ledger_pieces.decode(raw), state, stages=None)
            for index in state.pop("early_results", []):
                early = self.results.get(tenant, batch_id, index)
                if early is not None:
                    await self._item_callback(state, early)
        await self._advance(state, event)

    async def _send_head_left_out(self, copy: dict[str, Any]) -> None:
        """A part's piece came again from an exploder that ran the part again after a crash
        (before it recorded the part). The first piece stays the one stored and counted. If
        the copy's head (`prerelease_below`) is smaller, its exploder did not send the
        items between the two heads, and the first one may have died before they were
        written: send them now (an item sent twice is counted once). A bigger head sent
        more than the stored one says; the aggregator releases those again, harmlessly."""
        stored = stored_parts.get(copy["tenant"], copy["batch_id"], copy["part"], copy["piece"])
        if stored is None:
            return  # purged
        below = aggregation.prerelease_below(copy)
        stored_below = aggregation.prerelease_below(stored.fields)
        if below >= stored_below:
            return
        out = RecordBatches(items)
        for item in stored.items:
            left_out = not aggregation.prereleased(item, below)
            if left_out and aggregation.prereleased(item, stored_below):
                await out.add(item.key, stored.requested(item))
        await out.send()

    async def on_rejected(self, message: dict[str, Any], event: faust.EventT) -> None:
        """The batch's first part failed validation (`explode._refuse_batch`)."""
        tenant, batch_id = message["tenant"], message["batch_id"]
        state = self.state(tenant, batch_id, event)
        if self._seen(state, event) or not aggregation.reject(
            state, message["error"], message.get("callback"), iso()
        ):
            return
        key = batch_key(tenant, batch_id)
        self.changed.add(key)
        finished.put(key, {"finished_at": time.time()})
        metrics.batches_ended["rejected"] += 1
        await self._emit_final(state)

    def on_accepted(self, message: dict[str, Any], event: faust.EventT) -> None:
        """An HTTP submit published the batch's parts (`submit.publish_new`): the batch is
        `accepted` from now on, not only once the exploder's first part gets here. Only a
        batch not known yet: a state already here is of this batch (its part came first) or
        of an older one under the id (a rejected one, reopened by the part), and stays."""
        tenant, batch_id = message["tenant"], message["batch_id"]
        key = batch_key(tenant, batch_id)
        if key in self.states or _stored_state(key) is not None:
            return
        self._seen(self.state(tenant, batch_id, event), event)
        self.changed.add(key)

    async def on_cancel(self, message: dict[str, Any], event: faust.EventT) -> None:
        state = self.state(message["tenant"], message["batch_id"], event)
        if self._seen(state, event) or not aggregation.request_cancel(state, iso()):
            return
        await self._stop(state, "cancelled")
        await self._advance(state, event)  # it may end now: a part it waited for never came

    async def on_tick(self, event: faust.EventT) -> None:
        now = time.time()
        partition = event.message.partition
        await self._purge(finished.expired(partition, now))
        for key in due.expired(partition, now):
            entry = active_batches[key]
            tenant, batch_id = split_batch_key(key)
            if now >= entry["deadline_at"]:
                state = self.state(tenant, batch_id, event)
                if aggregation.pass_deadline(state, iso()):
                    await self._stop(state, "timed_out")
                    await self._advance(state, event)
            sweep_at = entry.get("sweep_at")
            if sweep_at is not None and now >= sweep_at:
                state = self.state(tenant, batch_id, event)
                await self._sweep(state)
                due.put(key, {**entry, "sweep_at": None})

    async def _purge(self, keys: list[str]) -> None:
        """Forget ended batches past their retention: state, parts, results, status, and
        the controls that every processor keeps in memory."""
        for key in keys:
            state = _stored_state(key)
            if state is not None:
                stored_results.drop(state["tenant"], state["batch_id"], state["posted"])
                for number, piece in aggregation.received_pieces(state):
                    stored_parts.drop(state["tenant"], state["batch_id"], number, piece)
                del batch_state[key]
                await publish(status, state["batch_id"].encode(), None)
                for control in control_keys(state):
                    await publish(controls, control.encode(), None)
            del finished_batches[key]
            log.info("batch %s passed its retention and was removed", key)

    async def _stop(self, state: State, status: str) -> None:
        """Cancel or deadline: tell the processors, report never-released stages now, and
        sweep what is still running after a grace period."""
        key = batch_key(state["tenant"], state["batch_id"])
        self.changed.add(key)
        await self._publish_controls(state)
        unreleased = aggregation.unreleased_stages(state)
        if unreleased:
            for part in _pieces(state):
                await self._report_unrun(part, state, stages=set(unreleased))
            state["released_stage"] = max(unreleased)
        grace = options.cancel_grace_s if status == "cancelled" else options.sweep_grace_s
        entry = active_batches.get(key)
        if entry is not None:
            due.put(key, {**entry, "sweep_at": time.time() + grace})
        log.info("batch %s %s", key, status)

    async def _sweep(self, state: State) -> None:
        """Report every released item still without a result as cancelled / timed out."""
        for part in _pieces(state):
            await self._report_unrun(part, state, stages=None, only_missing=True)

    async def _report_unrun(
        self,
        piece: Piece,
        state: State,
        *,
        stages: set[int] | None,
        only_missing: bool = False,
    ) -> None:
        status = "cancelled" if state["cancel_requested"] else "timed_out"
        unrun = []
        for item in piece.items:
            if stages is not None and item.stage not in stages:
                continue
            if (
                only_missing
                and self.results.offset(state["tenant"], state["batch_id"], item.index) is not None
            ):
                continue
            req = codec.decode_as("ItemRequested", piece.requested(item))
            result = unrun_result(req, status)
            unrun.append(bundled(result, codec.encode("ItemResult", result)))
        for bundle in split_bundles(unrun):  # counted when they come back on the ledger
            await publish_bundle(state["tenant"], state["batch_id"], bundle)

    async def _advance(self, state: State, event: faust.EventT) -> None:
        """Release the next stage, or finish the batch, when its time has come."""
        if aggregation.is_final(state):
            if state.get("final_event") == _event_id(event):
                await self._emit_final(state)  # a redelivery of the finishing event
            return
        key = batch_key(state["tenant"], state["batch_id"])
        small_batches.seen(key, state["posted"], options.release_window)
        aggregation.release_next_stage(state)
        await self._release(state)
        if aggregation.is_complete(state):
            metrics.batches_ended[aggregation.finish(state, iso())] += 1
            state["final_event"] = _event_id(event)
            key = batch_key(state["tenant"], state["batch_id"])
            self.changed.add(key)
            if key in active_batches:
                del active_batches[key]
            finished.put(key, {"finished_at": time.time()})
            await self._emit_final(state)

    async def _release(self, state: State) -> None:
        """Send the released stage's next items to the processors, as far as the window
        allows, in submission order (parts and their pieces arrive in order: the exploder
        enforces it). The window shrinks while small batches run (`streams.small_batches`)."""
        key = batch_key(state["tenant"], state["batch_id"])
        window = small_batches.window(key, options.release_window, options.shared_window)
        room = aggregation.release_room(state, window)
        cursor = state["cursor"]
        start = (cursor["part"], cursor["piece"], cursor["pos"])
        out = RecordBatches(items)
        while room and aggregation.piece_received(state, cursor["part"], cursor["piece"]):
            piece = stored_parts.get(
                state["tenant"], state["batch_id"], cursor["part"], cursor["piece"]
            )
            if piece is None:
                break  # purged
            piece_items, below = piece.items, aggregation.prerelease_below(piece.fields)
            while room and cursor["pos"] < len(piece_items):
                item = piece_items[cursor["pos"]]
                cursor["pos"] += 1
                if item.stage != cursor["stage"] or aggregation.prereleased(item, below):
                    continue
                await out.add(item.key, piece.requested(item))
                cursor["released"] += 1
                room -= 1
            if cursor["pos"] < len(piece_items):
                break
            cursor["pos"] = 0
            if cursor["piece"] + 1 < piece.fields["pieces"]:
                cursor["piece"] += 1
            else:
                cursor["part"], cursor["piece"] = cursor["part"] + 1, 0
        await out.send()
        if (cursor["part"], cursor["piece"], cursor["pos"]) != start:
            self.changed.add(key)

    async def _emit_final(self, state: State) -> None:
        callback = state["callback"]
        if not callback or callback.get("mode") not in ("batch", "both"):
            return
        record = aggregation.status_outcome(state)
        inline = self._inline_results(state)
        results_url = batch_urls(state["tenant"], state["batch_id"])["results_url"]
        await publish(
            callbacks,
            state["batch_id"].encode(),
            codec.encode(
                "CallbackRequested", batch_callback(record, callback["url"], inline, results_url)
            ),
        )

    def _inline_results(self, state: State) -> list[dict[str, Any]] | None:
        """The batch's results for its final callback, or None (the callback gives their
        URL) past `options.inline_results_max` results or `INLINE_RESULTS_BYTES` of them."""
        if state["posted"] > options.inline_results_max:
            return None
        raws, size = [], 0
        for raw in self.results.run_from(state["tenant"], state["batch_id"], 0, state["posted"]):
            size += len(raw)
            if size > INLINE_RESULTS_BYTES:
                return None
            raws.append(raw)
        return [codec.decode_as("ItemResult", raw) for raw in raws]

    async def _publish_controls(self, state: State) -> None:
        key = batch_key(state["tenant"], state["batch_id"])
        await publish(controls, key.encode(), encode_event(control_record(state)))

    async def close(self) -> None:
        """Write each touched batch and block of results once and publish its status."""
        self.results.write(in_event)
        for key in self.group_pages:
            state = self.states[key][0]
            page = group_page_key(key, state.get("group_page", 0))
            record = page_record(state["failed_groups"])
            await publish(controls, page.encode(), encode_event(record))
        for key, (state, event) in self.states.items():
            if key not in self.changed:
                continue
            with in_event(event):
                batch_state[key] = state
            registrations.known(key)
            await publish(
                status,
                state["batch_id"].encode(),
                codec.encode("BatchStatus", aggregation.status_record(state)),
            )


def _read_ledger_event(value: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A part's piece's fields (its items are read when they are released), or another
    ledger event's JSON (not a results bundle)."""
    if ledger_pieces.is_piece(value):
        return ledger_pieces.decode_fields(value), {}
    message = decode_event(value)
    if message.get("type") == "part":  # a piece written before pieces were binary
        return ledger_pieces.from_event(message).fields, message
    return None, message


def _event_id(event: faust.EventT) -> str:
    msg = event.message
    return f"{msg.topic}:{msg.partition}:{msg.offset}"


def _stored_state(key: str) -> State | None:
    """A batch's state as `batch_state` holds it, in the current layout."""
    stored = batch_state.get(key)
    return None if stored is None else aggregation.upgrade(stored)


def _stop_on_failure(state: State) -> bool:
    return bool(state.get("stop_on_failure", True))


def _pieces(state: State) -> Iterator[Piece]:
    """The batch's stored part pieces in submission order."""
    for number, piece in aggregation.received_pieces(state):
        part = stored_parts.get(state["tenant"], state["batch_id"], number, piece)
        if part is not None:
            yield part
