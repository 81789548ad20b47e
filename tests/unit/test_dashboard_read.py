"""The dashboard's read of every batch state: it gives the event loop a turn every
`STATES_PER_TURN` states, and a rebalance that changes the store's partitions under it is
503 `unavailable` (the page asks again a second later), not a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from streams import aggregation
from streams.api import dashboard
from streams.api.errors import ApiError
from streams.keys import batch_key


class Table:
    """The part of a faust table the read uses, over states made here."""

    def __init__(self, states: list[aggregation.State], fail: RuntimeError | None = None):
        self.states = states
        self.fail = fail

    def items(self) -> Iterator[tuple[str, aggregation.State]]:
        for n, state in enumerate(self.states):
            if self.fail is not None and n == len(self.states) // 2:
                raise self.fail
            yield batch_key(state["tenant"], state["batch_id"]), state


def states(n: int) -> list[aggregation.State]:
    made = []
    for i in range(n):
        state = aggregation.new_state("acme" if i % 2 else "globex", f"b{i}", f"t{i:06d}")
        state["status"] = "completed" if i % 3 else "in_progress"
        made.append(state)
    return made


async def test_the_read_gives_the_loop_turns_and_counts_the_key_s_tenants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = 5 * dashboard.STATES_PER_TURN
    monkeypatch.setattr(dashboard, "batch_state", Table(states(n)))
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    beside = asyncio.ensure_future(other_work())
    await asyncio.sleep(0)
    started = turns
    answer: dict[str, Any] = await dashboard._batches_of(frozenset({"acme"}))
    beside.cancel()
    assert turns - started >= 5
    acme = [i for i in range(n) if i % 2]
    assert answer["counts"] == {
        "acme": {
            "completed": sum(1 for i in acme if i % 3),
            "in_progress": sum(1 for i in acme if not i % 3),
        }
    }
    shown = [row["batch_id"] for row in answer["batches"]]
    assert shown == [f"b{i}" for i in sorted(acme, reverse=True)[: dashboard.SHOWN_BATCHES]]


async def test_partitions_changed_under_the_read_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    changed = RuntimeError("dictionary changed size during iteration")
    monkeypatch.setattr(dashboard, "batch_state", Table(states(10), fail=changed))
    with pytest.raises(ApiError) as raised:
        await dashboard._batches_of(frozenset({"acme"}))
    assert (raised.value.code, raised.value.status) == ("unavailable", 503)
    other = RuntimeError("a bug")
    monkeypatch.setattr(dashboard, "batch_state", Table(states(10), fail=other))
    with pytest.raises(RuntimeError, match="a bug"):
        await dashboard._batches_of(frozenset({"acme"}))
