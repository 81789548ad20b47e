"""The Celery peer: a no-op task and a chord callback, Redis as broker and result backend.

Imported by the Celery worker the bench starts (`celery -A bench.celery_app worker`) and
by the bench's client; both find Redis in `BENCH_REDIS_URL` (the bench's private
redis-server).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue="bench",
    task_acks_late=False,  # Celery's default: ack on receipt, the fast path
    worker_send_task_events=False,
    task_send_sent_event=False,
    task_track_started=False,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(i: int) -> dict[str, bool]:
    """The same no-op as `batchwire/noop`."""
    return {"ok": True}


@app.task(name="bench.done")
def done(results: list[Any]) -> int:
    """The chord callback: how many results it got."""
    return len(results)
