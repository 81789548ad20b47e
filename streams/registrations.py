"""Waiting for this worker's aggregator to know a batch.

An HTTP submit puts an `accepted` event on the ledger; the aggregator that owns the batch's
ledger partition writes the batch's state a few milliseconds later. The submit waits for
that (through `/internal/known/...` on the owner) before its 202, so that the 202's
`status_url` answers at once: without the wait, most lookups made right after a 202 were
404s. The aggregator calls `known` for every state it writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from streams import tables
from streams.keys import batch_key

#: how long a submit waits, at most, for the aggregator to know its new batch (a ledger
#: partition behind a backlog gets no longer: the 202 goes out, and lookups may 404 a while)
KNOWN_WITHIN_S = 2.0

_waiters: dict[str, list[asyncio.Future[None]]] = {}


def known(key: str) -> None:
    """The aggregator wrote the state of the batch `key`: wake whoever waits for it."""
    for waiter in _waiters.pop(key, ()):
        if not waiter.done():
            waiter.set_result(None)


async def wait_known(key: str, is_known: Callable[[], bool], timeout_s: float) -> bool:
    """True once the batch `key` is known here (at once if it is), False after `timeout_s`."""
    if is_known():
        return True
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _waiters.setdefault(key, []).append(waiter)
    try:
        async with asyncio.timeout(timeout_s):
            await waiter
        return True
    except TimeoutError:
        return is_known()
    finally:
        waiting = _waiters.get(key, [])
        if waiter in waiting:
            waiting.remove(waiter)
            if not waiting:
                del _waiters[key]


async def batch_known(tenant: str, batch_id: str, timeout_s: float) -> bool:
    """`wait_known` for the batch's state in this worker's `batch_state` table."""
    key = batch_key(tenant, batch_id)
    return await wait_known(key, lambda: key in tables.batch_state, timeout_s)
