"""The Celery task a stage's worker runs, made from the stage table: one per stage, thin over a plain function."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery, Task
from celery_batches import Batches, SimpleRequest
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from shared import failpoints, outbox, progress
from shared.backoff import doubling
from shared.config import get_settings
from shared.failpoints import Point
from shared.lifecycle import StageOutcome
from shared.stages import NOTIFY_TASK, STAGES, Stage

log = logging.getLogger(__name__)


def next_task(stage: Stage) -> str:
    then = STAGES[stage].then
    assert then is not None, f"the {stage} stage ends jobs; it sends nothing on"
    return STAGES[then].task


def db_backoff(retries: int) -> float:
    """Seconds before a stage whose database was unreachable tries a job again: doubling, capped."""
    settings = get_settings()
    return doubling(settings.db_retry_delay_s, retries, settings.db_retry_max_delay_s)


def announce(app: Celery, job_ids: Sequence[uuid.UUID]) -> None:
    """Sends the webhooks of jobs just ended (committed) to the notify queue; a lost send is found due by the
    sweeper."""
    for job_id in job_ids:
        with contextlib.suppress(BrokerError, OSError):
            app.send_task(NOTIFY_TASK, kwargs={"job_id": str(job_id)})


def send_back(app: Celery, task: str, job_ids: Sequence[uuid.UUID]) -> None:
    """Sends a batch's jobs back to their queue after `db_retry_delay_s` (their database was unreachable).

    Waited here, never as a countdown: celery-batches 0.11 compares an ETA's epoch timestamp with
    `time.monotonic()`, so an ETA request never runs; it stays unacked in the worker, holding a prefetch slot,
    and once a batch's worth of them is held the consumer fetches nothing more, forever (the hang of issue 22).
    The worker has nothing else to do while its database is away."""
    if not job_ids:
        return
    time.sleep(get_settings().db_retry_delay_s)
    for job_id in job_ids:
        app.send_task(task, kwargs={"job_id": str(job_id)})


def job_task(app: Celery, stage: Stage, run: Callable[[uuid.UUID], StageOutcome]) -> Task:
    """One job per call; `run` says where it went (to the next stage: its message is then in the outbox). A lost database sends the job back to this queue, with backoff, for as long as the outage lasts:
    no message is dropped. A crash outside the job's own error handling (a bug while ending it) sends it back
    too, at most `max_deliveries` times: its claim is taken again, it must not stay in the stage's status."""

    @app.task(name=STAGES[stage].task, bind=True, max_retries=None)
    def task(self: Task, job_id: str) -> None:
        with progress.working():
            try:
                outcome = run(uuid.UUID(job_id))
            except OperationalError as exc:
                raise self.retry(countdown=db_backoff(self.request.retries), exc=exc) from exc
            except Exception as exc:
                log.exception("stage crashed outside its job's error handling; sending the job again")
                limit = get_settings().max_deliveries
                raise self.retry(
                    countdown=db_backoff(self.request.retries), exc=exc, max_retries=limit
                ) from exc
            if outcome.forward:
                failpoints.hit(Point.AFTER_COMMIT)
                outbox.send(app, next_task(stage), outcome.forward)
            announce(app, outcome.announce)

    return task


class FlushingBatches(Batches):  # type: ignore[misc]  # celery-batches is untyped
    """celery-batches with a flush timer that survives a broker reconnection.

    Celery's event loop clears its hub's timer when the connection is lost; celery-batches keeps a handle to
    its cleared flush timer and, seeing one, never starts another, so after any Redis restart a partial batch
    waited until a full one had gathered (a single job: forever). Each consumer start builds the task's strategy
    again: that is when it gets a fresh timer (it cancels itself once the buffers are empty)."""

    def Strategy(self, task: Task, app: Celery, consumer: Any) -> Any:  # noqa: N802  (celery's name)
        handler = super().Strategy(task, app, consumer)
        self._tref = consumer.timer.call_repeatedly(self.flush_interval, self._do_flush)
        return handler


def batch_task(app: Celery, stage: Stage, run: Callable[[Sequence[uuid.UUID]], StageOutcome]) -> Task:
    """A celery-batches task: up to the stage's batch size of queued jobs per call, acked together once it returns.

    `run`'s `forward` jobs go to the next stage, its `retry` jobs (database unreachable) back to this queue after
    a delay, each job on its own. A crash outside the jobs' own error handling sends the whole batch back (each
    job's claim counts its deliveries, so a job that keeps crashing ends `redelivery_limit`).
    """
    settings, spec = get_settings(), STAGES[stage]

    @app.task(
        name=spec.task,
        base=FlushingBatches,
        flush_every=spec.batch_size(settings),
        flush_interval=settings.batch_max_wait_s,
    )
    def task(requests: list[SimpleRequest]) -> None:
        job_ids = [uuid.UUID(r.kwargs["job_id"]) for r in requests]
        with progress.working():
            try:
                outcome = run(job_ids)
            except Exception:
                log.exception("batch crashed outside its jobs' error handling; sending its jobs again")
                outcome = StageOutcome(retry=job_ids)
            if outcome.forward:  # the large stage ends its jobs: it has no next task
                failpoints.hit(Point.AFTER_COMMIT)
                outbox.send(app, next_task(stage), outcome.forward)
            outbox.send(
                app, spec.task, outcome.again
            )  # the back of this queue: the jobs that came meanwhile first
            send_back(app, spec.task, outcome.retry)
            announce(app, outcome.announce)

    return task
