"""Options every stage task shares, and the micro-batching wrapper of the model stages."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery_batches import Batches, SimpleRequest
from sqlalchemy.exc import OperationalError

from shared.config import get_settings

# Only a lost database is retried (with backoff); every other error already ended the job with a code.
RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


def batch_task(
    app: Celery, name: str, *, batch_size: int, run: Callable[[list[uuid.UUID]], Any], forward_to: str | None
) -> Task:
    """A celery-batches task: up to `batch_size` queued jobs per call, acked together once the call returns.

    `run` returns a BatchOutcome; its `forward` jobs go to the next stage, its `retry` jobs (database
    unreachable) back to this queue after a delay, each job on its own.
    """
    settings = get_settings()

    @app.task(name=name, base=Batches, flush_every=batch_size, flush_interval=settings.batch_max_wait_s)
    def task(requests: list[SimpleRequest]) -> None:
        outcome = run([uuid.UUID(r.kwargs["job_id"]) for r in requests])
        for job_id in outcome.forward if forward_to else ():
            app.send_task(forward_to, kwargs={"job_id": str(job_id)})
        for job_id in outcome.retry:
            app.send_task(name, kwargs={"job_id": str(job_id)}, countdown=settings.db_retry_delay_s)

    return task
