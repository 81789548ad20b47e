"""Run jobs concurrently across lanes and strictly in order within one lane.

A lane is a transaction group (`tenant/batch/group`): its items run one after another in
submission order.  Different lanes run concurrently, at most `concurrency` jobs at once, and
at most `max_pending` jobs are accepted before `submit` waits (back-pressure on the stream).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Lanes:
    def __init__(self, concurrency: int, max_pending: int | None = None) -> None:
        self._running = asyncio.Semaphore(concurrency)
        self._room = asyncio.Semaphore(max_pending or concurrency * 8)
        self._queues: dict[Hashable, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: jobs submitted and not finished (running or waiting in a lane)
        self.busy = 0

    async def submit(self, lane: Hashable | None, job: Job) -> None:
        """Queue `job` on `lane` (None: a lane of its own); waits while too much is pending."""
        await self._room.acquire()
        self.busy += 1
        if lane is None:
            self._start(deque([job]))
            return
        queue = self._queues.get(lane)
        if queue is not None:
            queue.append(job)
            return
        queue = self._queues[lane] = deque([job])
        self._start(queue, lane)

    def _start(self, queue: deque[Job], lane: Hashable | None = None) -> None:
        task = asyncio.ensure_future(self._drain(queue, lane))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, queue: deque[Job], lane: Hashable | None) -> None:
        try:
            while queue:
                job = queue[0]
                try:
                    async with self._running:
                        await job()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # the lanes themselves are being stopped
                    log.error("a job of lane %r was cancelled from inside", lane)
                except Exception:
                    log.exception("a job of lane %r failed", lane)
                finally:
                    queue.popleft()
                    self.busy -= 1
                    self._room.release()
        finally:
            if lane is not None and self._queues.get(lane) is queue:
                del self._queues[lane]

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
