"""Run jobs concurrently across lanes and strictly in order within one lane.

A lane is a transaction group (`tenant/batch/group`): its items run one after another in
submission order.  Different lanes run concurrently, at most `concurrency` jobs at once, and
at most `max_pending` jobs are accepted before `submit` waits (back-pressure on the stream).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Lanes:
    def __init__(self, concurrency: int, max_pending: int | None = None) -> None:
        self._concurrency = concurrency
        self._running = asyncio.Semaphore(concurrency)
        self._room = asyncio.Semaphore(max_pending or concurrency * 8)
        self._queues: dict[Hashable, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: jobs without a lane, taken by whichever of their drainers is free
        self._free: deque[Job] = deque()
        self._free_drainers = 0
        self._free_starting = 0  # of those, started and not yet running a job
        #: jobs submitted and not finished (running or waiting in a lane)
        self.busy = 0

    async def submit(self, lane: Hashable | None, job: Job) -> None:
        """Queue `job` on `lane` (None: no lane, it runs beside any other job); waits while
        too much is pending."""
        await self._room.acquire()
        self.busy += 1
        if lane is None:
            self._free.append(job)
            self._more_free_drainers()
            return
        queue = self._queues.get(lane)
        if queue is not None:
            queue.append(job)
            return
        queue = self._queues[lane] = deque([job])
        self._spawn(self._drain(queue, lane))

    def _spawn(self, drain: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(drain)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _more_free_drainers(self) -> None:
        """Start one more drainer of the jobs without a lane while there are some, none is
        about to start and fewer than `concurrency` run.

        A task per job cost more than a no-op job itself. A drainer takes jobs one after
        another; when it takes one and more wait, it starts the next drainer, so a job that
        waits (an HTTP call) lets the next one start, up to `concurrency` at once, while jobs
        that never wait all run in the first drainer."""
        if self._free and not self._free_starting and self._free_drainers < self._concurrency:
            self._free_starting += 1
            self._free_drainers += 1
            self._spawn(self._drain_free())

    async def _drain_free(self) -> None:
        self._free_starting -= 1
        try:
            while self._free:
                job = self._free.popleft()
                self._more_free_drainers()
                await self._run(job, None)
        finally:
            self._free_drainers -= 1

    async def _drain(self, queue: deque[Job], lane: Hashable) -> None:
        try:
            while queue:
                await self._run(queue[0], lane)
                queue.popleft()
        finally:
            if self._queues.get(lane) is queue:
                del self._queues[lane]

    async def _run(self, job: Job, lane: Hashable | None) -> None:
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
            self.busy -= 1
            self._room.release()

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values()) + len(self._free)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
