"""The Celery task a stage's worker runs, made from the stage table: one per stage, thin over a plain function."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery, Task
from celery_batches import Batches, SimpleRequest
from sqlalchemy.exc import OperationalError

from shared.batches import BatchOutcome
from shared.config import get_settings
from shared.stages import STAGES, Stage

# Only a lost database is retried (with backoff); every other error already ended the job with a code.
RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


def send_on(app: Celery, stage: Stage, job_id: uuid.UUID | str, **options: Any) -> None:
    """Sends a job to the stage after `stage` (the table says which)."""
    then = STAGES[stage].then
    assert then is not None, f"the {stage} stage ends jobs; it sends nothing on"
    app.send_task(STAGES[then].task, kwargs={"job_id": str(job_id)}, **options)


def job_task(app: Celery, stage: Stage, run: Callable[[uuid.UUID], bool]) -> Task:
    """One job per call; `run` returns True when the job goes on to the next stage."""

    @app.task(name=STAGES[stage].task, **RETRY)
    def task(job_id: str) -> None:
        if run(uuid.UUID(job_id)):
            send_on(app, stage, job_id)

    return task


def batch_task(app: Celery, stage: Stage, run: Callable[[Sequence[uuid.UUID]], BatchOutcome]) -> Task:
    """A celery-batches task: up to the stage's batch size of queued jobs per call, acked together once it returns.

    `run`'s `forward` jobs go to the next stage, its `retry` jobs (database unreachable) back to this queue after
    a delay, each job on its own.
    """
    settings, spec = get_settings(), STAGES[stage]

    @app.task(
        name=spec.task,
        base=Batches,
        flush_every=spec.batch_size(settings),
        flush_interval=settings.batch_max_wait_s,
    )
    def task(requests: list[SimpleRequest]) -> None:
        outcome = run([uuid.UUID(r.kwargs["job_id"]) for r in requests])
        for job_id in outcome.forward:
            send_on(app, stage, job_id)
        for job_id in outcome.retry:
            app.send_task(spec.task, kwargs={"job_id": str(job_id)}, countdown=settings.db_retry_delay_s)

    return task
