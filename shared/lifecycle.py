"""What every stage does around its work, in two transactions: claim the job and load what the stage reads
(one), then record its cost and move the job on (two). Errors end the job with a code."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared import failpoints, liveness
from shared.config import get_settings
from shared.db import budget, calls, deliveries
from shared.db import repository as repo
from shared.db.models import RunOutcome
from shared.db.session import session_scope
from shared.errors import JobError, stage_timeout
from shared.failpoints import Point
from shared.logs import job_context
from shared.prompts import SummaryLength
from shared.schemas import Usage
from shared.stages import FIRST, STAGES, Stage, next_status
from shared.states import JobStatus, Tier

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a stage reads of its job, inside the claim's transaction (the job row is locked and current).
Load = Callable[[Session, repo.JobRow], T]


# The attempt each of this process's claims opened, until its result is recorded: (job, stage) -> attempt.
_attempts: dict[tuple[uuid.UUID, Stage], int] = {}
# Jobs this process ended that have a webhook to deliver: the task sends them to the notify queue after its
# commit (a process that dies first leaves them to the sweeper, which finds them due).
_ended: list[uuid.UUID] = []


def take_ended() -> list[uuid.UUID]:
    """The jobs ended since the last call whose webhook is due (and forgets them)."""
    ended = _ended.copy()
    _ended.clear()
    return ended


def _announce(session: Session, job_id: uuid.UUID) -> None:
    if deliveries.pending(session, job_id=job_id):
        _ended.append(job_id)


def claim(job_id: uuid.UUID, stage: Stage, load: Load[T]) -> T | None:
    """What `load` read of the job, if this delivery should work on it; None for a duplicate or an ended job
    (ack and move on). One transaction: lock the job, check its status, name this process as its worker,
    open the attempt's ledger row, load."""
    own = STAGES[stage].status
    # A new job is taken by the first stage; any later delivery must find the job in the stage's own status.
    accept = (own, JobStatus.QUEUED) if stage is FIRST else (own,)
    limit = get_settings().max_deliveries
    with session_scope() as session:
        job = repo.take_job(session, job_id=job_id, to=own, accept=accept, by=liveness.ensure_beating())
        if job is None:
            log.info(
                "not claimed: no such job, or a duplicate delivery",
                extra={"job_id": str(job_id), "stage": stage},
            )
            return None
        attempt, deliveries = repo.open_attempt(session, job_id=job_id, stage=stage, since=job.requeued_at)
        if deliveries <= limit:
            loaded = load(session, job)
            _attempts[job_id, stage] = attempt
            return loaded
    # The broker keeps no redelivery count: ours stops a job that kills its worker from looping forever.
    end_job(
        job_id,
        JobError(
            "redelivery_limit",
            f"the {stage} stage was delivered {deliveries} times (limit {limit}); "
            "its worker died or timed out each time",
        ),
    )
    return None


Document = tuple[list[tuple[str | None, str]], SummaryLength]


def load_document(session: Session, job: repo.JobRow) -> Document:
    """What a model stage reads: the job's turns as (speaker, text), as ingestion stored them, and the summary
    length its submitter asked for."""
    turns = repo.get_turns(session, job_id=job.id)
    if not turns:
        raise JobError("turns_missing", f"job {job.id} reached a model stage without ingested turns")
    return [(t.get("speaker"), t["text"]) for t in turns], SummaryLength(job.summary_length)


Sliced = tuple[Document, calls.StoredCalls]


def sliced_loader(stage: Stage) -> Load[Sliced]:
    """What a model stage reads: the job's document, and the calls its earlier slices finished."""

    def load(session: Session, job: repo.JobRow) -> Sliced:
        return load_document(session, job), calls.stored(session, job_id=job.id, stage=stage)

    return load


def _record(
    session: Session, *, job_id: uuid.UUID, stage: Stage, usage: Usage, outcome: RunOutcome = RunOutcome.OK
) -> int:
    """Closes this delivery's ledger row as the stage's result (or a slice of it), priced; its attempt."""
    settings = get_settings()
    attempt = _attempts.pop((job_id, stage), 1)
    repo.record_usage(
        session,
        job_id=job_id,
        stage=stage,
        attempt=attempt,
        usage=usage,
        price=settings.price_for(usage.model, usage.device),
        price_version=settings.price_version,
        outcome=outcome,
    )
    return attempt


def park(session: Session, *, job_id: uuid.UUID, stage: Stage, usage: Usage) -> None:
    """A slice of a long job is done: its usage billed as a `yielded` attempt, its claim let go, its stage's
    message written into the outbox, so that it queues again behind the jobs that came meanwhile."""
    _record(session, job_id=job_id, stage=stage, usage=usage, outcome=RunOutcome.YIELDED)
    repo.release(session, job_id=job_id)
    repo.enqueue(session, job_id=job_id, task=STAGES[stage].task)


def _moved(session: Session, *, job_id: uuid.UUID, stage: Stage, attempt: int, moved: bool) -> None:
    if not moved:  # a concurrent duplicate moved the job first: this compute is billed, not as the result
        repo.supersede(session, job_id=job_id, stage=stage, attempt=attempt)
    if stage is Stage.LARGE:  # the reservation becomes what every large attempt cost, the lost ones too
        budget.settle(session, job_id=job_id, cost=repo.stage_total(session, job_id=job_id, stage=stage))


def advance(session: Session, *, job_id: uuid.UUID, stage: Stage, usage: Usage, **fields: Any) -> bool:
    """Prices the stage's usage into its ledger row, hands the job to the next stage (with `fields`, more of the
    job row) and writes the next stage's message into the outbox, in the caller's transaction. False when a
    concurrent duplicate already moved the job: its work is billed as superseded, nothing is sent."""
    then = STAGES[stage].then
    assert then is not None, f"the {stage} stage ends jobs; it hands nothing on"
    attempt = _record(session, job_id=job_id, stage=stage, usage=usage)
    moved = repo.move_status(
        session, job_id=job_id, expect=STAGES[stage].status, to=next_status(stage), **fields
    )
    if moved:
        repo.enqueue(session, job_id=job_id, task=STAGES[then].task)
    _moved(session, job_id=job_id, stage=stage, attempt=attempt, moved=moved)
    return moved


def complete(
    session: Session,
    *,
    job_id: uuid.UUID,
    stage: Stage,
    usage: Usage,
    summary: str,
    tier: Tier,
    degraded: JobError | None = None,
) -> None:
    """Prices the stage's usage and ends the job with `summary`: done, or degraded with the reason.

    A job never ends with an empty summary: that is `empty_summary`, a failure, not a result.
    """
    if not summary.strip():
        raise JobError("empty_summary", f"the {tier} model wrote an empty summary; nothing usable to return")
    attempt = _record(session, job_id=job_id, stage=stage, usage=usage)
    extra: dict[str, Any] = (
        {"error_code": degraded.code, "error_message": degraded.message} if degraded else {}
    )
    moved = repo.move_status(
        session,
        job_id=job_id,
        expect=STAGES[stage].status,
        to=JobStatus.DEGRADED if degraded else JobStatus.DONE,
        summary=summary,
        tier=tier,
        **extra,
    )
    _moved(session, job_id=job_id, stage=stage, attempt=attempt, moved=moved)
    if moved:
        _announce(session, job_id)


def end_job(job_id: uuid.UUID, error: JobError) -> None:
    with session_scope() as session:
        failpoints.hit(Point.ENDING_JOB)
        ended = repo.end_with_error(session, job_id=job_id, error=error)
        calls.forget(session, job_id=job_id)
        if ended:
            repo.close_open_runs(session, job_id=job_id, outcome=RunOutcome.FAILED)
            _announce(session, job_id)
        # What its large attempts cost (nothing for an escalation that never ran).
        budget.settle(
            session, job_id=job_id, cost=repo.stage_total(session, job_id=job_id, stage=Stage.LARGE)
        )
    for key in [key for key in _attempts if key[0] == job_id]:
        del _attempts[key]
    log.log(
        logging.WARNING if ended else logging.INFO,
        "job ended: %s",
        error,
        extra={"job_id": str(job_id), "code": error.code},
    )


@contextmanager
def job_errors(job_id: uuid.UUID) -> Iterator[None]:
    """Turns any error inside a stage into an ended job with a code, except a lost database (retried).

    Every log line written inside carries the job's id.
    """
    with job_context(job_id):
        try:
            yield
        except JobError as error:
            end_job(job_id, error)
        except SoftTimeLimitExceeded:  # Celery's limit on a prefork stage (ingest, gate)
            end_job(job_id, stage_timeout(get_settings().stage_time_limit_s))
        except OperationalError:
            raise  # the database went away: the task retries, the job keeps its state
        except Exception as exc:  # a bug must not leave the job stuck mid-pipeline
            log.exception("stage crashed")
            end_job(job_id, JobError("internal_error", f"{type(exc).__name__}: {exc}"))
