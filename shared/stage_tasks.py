"""The Celery task a stage's worker runs, made from the stage table: one per stage, thin over a plain function."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence

from celery import Celery, Task
from celery_batches import Batches, SimpleRequest
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from shared import lifecycle, outbox
from shared.batches import BatchOutcome
from shared.config import get_settings
from shared.stages import NOTIFY_TASK, STAGES, Stage


def next_task(stage: Stage) -> str:
    then = STAGES[stage].then
    assert then is not None, f"the {stage} stage ends jobs; it sends nothing on"
    return STAGES[then].task


def db_backoff(retries: int) -> float:
    """Seconds before a stage whose database was unreachable tries a job again: doubling, capped."""
    settings = get_settings()
    return float(min(settings.db_retry_delay_s * 2**retries, settings.db_retry_max_delay_s))


def _crash_after_commit() -> None:
    """The fault suite's hook: a stage dies exactly between its commit and its send, once (the flag file says
    it did)."""
    flag = get_settings().crash_once_after_commit
    if flag is not None and not flag.exists():
        flag.write_text(str(os.getpid()))
        os._exit(70)


def announce(app: Celery) -> None:
    """Sends the webhooks of the jobs this process just ended (committed) to the notify queue; a lost send is
    found due by the sweeper."""
    for job_id in lifecycle.take_ended():
        with contextlib.suppress(BrokerError, OSError):
            app.send_task(NOTIFY_TASK, kwargs={"job_id": str(job_id)})


def job_task(app: Celery, stage: Stage, run: Callable[[uuid.UUID], bool]) -> Task:
    """One job per call; `run` returns True when the job goes on to the next stage (its message is then in the
    outbox). A lost database sends the job back to this queue, with backoff, for as long as the outage lasts:
    no message is dropped."""

    @app.task(name=STAGES[stage].task, bind=True, max_retries=None)
    def task(self: Task, job_id: str) -> None:
        try:
            forward = run(uuid.UUID(job_id))
        except OperationalError as exc:
            raise self.retry(countdown=db_backoff(self.request.retries), exc=exc) from exc
        if forward:
            _crash_after_commit()
            outbox.send(app, next_task(stage), [uuid.UUID(job_id)])
        announce(app)

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
        if outcome.forward:
            _crash_after_commit()
        outbox.send(app, next_task(stage), outcome.forward)
        for job_id in outcome.retry:
            app.send_task(spec.task, kwargs={"job_id": str(job_id)}, countdown=settings.db_retry_delay_s)
        announce(app)

    return task
