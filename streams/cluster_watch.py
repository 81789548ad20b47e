"""What this process's aiokafka clients learn of the cluster from metadata answers: the
topics they ask for that it does not have, and its id.

Missing topics. aiokafka's fetcher asks for new metadata as soon as an assigned partition
has no leader, and its client sends the request at once. When the topics under a running
worker were deleted, or the broker came back without its data, every answer said "unknown
topic" and the next request went out at once: the worker sent ~12,000 metadata requests a
second (81% of a core; aiokafka logs an error for each missing topic of each answer) and
never recovered (calf-ai/calfkit-sdk#328 saw the same with aiokafka 0.13). Kafka's Java
client never refreshes metadata sooner than `retry.backoff.ms` after the last refresh.
While a topic a client asked for is missing, its next update now waits until its
`retry_backoff_ms` (100 ms) has passed since the last (updates otherwise go at once, as
before, so start-up and rebalances are not slowed). `problem` reports topics missing for
`LOST_AFTER_S`.

Another cluster. A broker back without its data (or formatted anew by `batchwire kafka up`,
or a new cluster at the same address) answers with another cluster id. A worker's tables
and positions belong to the cluster it started on (`expect`): one that went on found its
topics again once a peer created them, and went on from its old offsets and tables.
`problem` reports another id as soon as an answer carries it.

The worker, its item processes and the connector run `exit_on_problem`: restarted (by a
supervisor), they create their topics again, and the worker sets aside a data dir of
another cluster (`streams.data_dir`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata

from streams.errors import ClusterChanged, TopicsMissing

log = logging.getLogger(__name__)
#: a topic missing this long (without a break) is a problem
LOST_AFTER_S = 30.0
#: answers further apart than this break the count: the broker was unreachable meanwhile
#: (while a topic is missing, a client asks every 100 ms)
ANSWER_GAP_S = 5.0
#: the exit status on a problem (EX_TEMPFAIL: a restart is the remedy)
EXIT_STATUS = 75


@dataclass
class _Updates:
    """One client's last metadata update, and what it found missing since when."""

    last_at: float = float("-inf")
    missing: frozenset[str] = frozenset()
    missing_since: float | None = None
    answered_at: float = float("-inf")

    def answered(self, asked: Iterable[str], found: set[str], now: float) -> None:
        """An answer at `now` to a request for `asked`. A topic missing before a gap in the
        answers (the broker down or restarting) starts its count again: a worker saw a
        topic missing in its first moments, then the broker stopped for 25 s before another
        answer, and it stopped as if the topic had been missing for 30 s."""
        missing = frozenset(asked) - found
        if not missing:
            self.missing_since = None
        elif self.missing_since is None or now - self.answered_at > ANSWER_GAP_S:
            self.missing_since = now
        self.missing = missing
        self.answered_at = now

    def missing_for(self, now: float) -> float | None:
        """Seconds the topics have been missing without a break, as of `now`; None when
        none are, or when the last answer is older than `ANSWER_GAP_S` (nothing is known)."""
        if self.missing_since is None or now - self.answered_at > ANSWER_GAP_S:
            return None
        return now - self.missing_since


_updates: weakref.WeakKeyDictionary[AIOKafkaClient, _Updates] = weakref.WeakKeyDictionary()
#: the cluster this process started on (`expect`), and the ids metadata answers carried
_expected_id: str | None = None
_seen_ids: set[str] = set()


def expect(cluster_id: str) -> None:
    """The id of the cluster this process's state belongs to."""
    global _expected_id
    _expected_id = cluster_id


def expected() -> str | None:
    """The id given to `expect` (None before)."""
    return _expected_id


def problem(now: float) -> ClusterChanged | TopicsMissing | None:
    """Why this process must stop, if it must: the cluster is another one than it started
    on, or topics its clients ask for have been missing for `LOST_AFTER_S` (`now` on the
    event loop's clock)."""
    other = sorted(_seen_ids - {_expected_id}) if _expected_id is not None else []
    if other:
        return ClusterChanged(
            f"the Kafka cluster now answering is {', '.join(other)}, not {_expected_id} that "
            "this process's offsets (and a worker's tables) belong to (the broker lost its "
            "data?)"
        )
    by_time = {
        missing_s: u
        for u in list(_updates.values())
        if (missing_s := u.missing_for(now)) is not None
    }
    if not by_time:
        return None
    missing_s = max(by_time)
    if missing_s < LOST_AFTER_S:
        return None
    names = ", ".join(sorted(by_time[missing_s].missing))
    return TopicsMissing(
        f"{names} missing from the cluster for {missing_s:.0f} s (deleted, or the broker "
        "lost its data); restarted, this process creates them again"
    )


async def exit_on_problem(interval_s: float = 1.0) -> None:
    """Look for a `problem` every `interval_s`; on one, log it and end the process at once.

    Not an orderly stop (`stop_worker`): that commits offsets and flushes the producer, and
    the flush waited for the gone topics (faust's producer gives up after 20 minutes), while
    the commit would write the old cluster's positions into the new one."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval_s)
        found = problem(loop.time())
        if found is not None:
            log.critical("stopping at once: %s", found)
            sys.stderr.flush()
            os._exit(EXIT_STATUS)


@functools.cache  # once per process
def install() -> None:
    """Pace every aiokafka client's metadata updates while a topic it asks for is missing,
    and note the cluster ids of every answer."""
    original: Callable[..., Awaitable[bool]] = AIOKafkaClient._metadata_update

    async def _metadata_update(
        self: AIOKafkaClient, cluster_metadata: ClusterMetadata, topics: Any
    ) -> bool:
        if cluster_metadata is not self.cluster or not topics:
            return await original(self, cluster_metadata, topics)  # not the client's view
        updates = _updates.setdefault(self, _Updates())
        loop = asyncio.get_running_loop()
        if updates.missing_since is not None:
            wait = updates.last_at + self._retry_backoff - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        updates.last_at = loop.time()
        asked = list(topics)
        updated = await original(self, cluster_metadata, topics)
        if updated:  # else no broker answered: nothing learned
            updates.answered(asked, cluster_metadata.topics(), loop.time())
        return updated

    AIOKafkaClient._metadata_update = _metadata_update

    original_update: Callable[[ClusterMetadata, Any], None] = ClusterMetadata.update_metadata

    def update_metadata(self: ClusterMetadata, metadata: Any) -> None:
        cluster_id = getattr(metadata, "cluster_id", None)  # metadata v2 and later
        if cluster_id:
            _seen_ids.add(cluster_id)
        original_update(self, metadata)

    ClusterMetadata.update_metadata = update_metadata
