"""What every stage does around its work, in two transactions: claim the job and load what the stage reads
(one), then record its cost and move the job on (two). Errors end the job with a code."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared import failpoints, liveness
from shared.config import get_settings
from shared.db import budget, calls, deliveries, ledger
from shared.db import outbox as outbox_rows
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


class Moved(Enum):
    """What a stage's save did with its job, for its task to act on once the transaction committed."""

    ON = "on"  # handed to the next stage: its message is in the outbox
    ENDED = "ended"  # ended here with a webhook due: the task sends it to the notify queue
    STAYED = "stayed"  # nothing to send: a duplicate moved it first, or it ended without a webhook


@dataclass
class StageOutcome:
    """Where a stage's jobs go once its transactions committed (a process that dies first leaves its outbox rows
    and due webhooks to the sweeper)."""

    forward: list[uuid.UUID] = field(default_factory=list)  # send to the next stage
    retry: list[uuid.UUID] = field(default_factory=list)  # the database was unreachable: send again later
    again: list[uuid.UUID] = field(default_factory=list)  # a long job's slice is done: queue it again now
    announce: list[uuid.UUID] = field(default_factory=list)  # ended with a webhook due: send to notify

    def add(self, job_id: uuid.UUID, moved: Moved) -> None:
        if moved is Moved.ON:
            self.forward.append(job_id)
        elif moved is Moved.ENDED:
            self.announce.append(job_id)


@dataclass(frozen=True)
class Claimed(Generic[T]):
    """A job this delivery works on: the attempt its claim opened (its ledger row), and what the stage loaded."""

    job_id: uuid.UUID
    stage: Stage
    attempt: int
    loaded: T


def claim(job_id: uuid.UUID, stage: Stage, load: Load[T]) -> Claimed[T] | None:
    """The job, if this delivery should work on it; None for a duplicate or an ended job (ack and move on). One
    transaction: lock the job, check its status, name this process as its worker, open the attempt's ledger row,
    load. Past `max_deliveries` the claim commits, then raises `redelivery_limit` (for `job_errors` to end it)."""
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
        attempt, deliveries = ledger.open_attempt(session, job_id=job_id, stage=stage, since=job.requeued_at)
        if deliveries <= limit:
            return Claimed(job_id, stage, attempt, load(session, job))
    # The broker keeps no redelivery count: ours stops a job that kills its worker from looping forever.
    raise JobError(
        "redelivery_limit",
        f"the {stage} stage was delivered {deliveries} times (limit {limit}); its worker died or timed out each time",
    )


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
    session: Session, claimed: Claimed[Any], usage: Usage, outcome: RunOutcome = RunOutcome.OK
) -> None:
    """Closes this delivery's ledger row as the stage's result (or a slice of it), priced."""
    settings = get_settings()
    ledger.record_usage(
        session,
        job_id=claimed.job_id,
        stage=claimed.stage,
        attempt=claimed.attempt,
        usage=usage,
        price=settings.price_for(usage.model, usage.device),
        price_version=settings.price_version,
        outcome=outcome,
    )


def park(session: Session, claimed: Claimed[Any], usage: Usage) -> None:
    """A slice of a long job is done: its usage billed as a `yielded` attempt, its claim let go, its stage's
    message written into the outbox, so that it queues again behind the jobs that came meanwhile."""
    _record(session, claimed, usage, outcome=RunOutcome.YIELDED)
    repo.release(session, job_id=claimed.job_id)
    outbox_rows.enqueue(session, job_id=claimed.job_id, task=STAGES[claimed.stage].task)


def _superseded(session: Session, claimed: Claimed[Any]) -> None:
    """A concurrent duplicate moved the job first: this compute is billed, not as the result."""
    ledger.supersede(session, job_id=claimed.job_id, stage=claimed.stage, attempt=claimed.attempt)


def advance(session: Session, claimed: Claimed[Any], usage: Usage, **fields: Any) -> Moved:
    """Prices the stage's usage into its ledger row, hands the job to the next stage (with `fields`, more of the
    job row) and writes the next stage's message into the outbox, in the caller's transaction. STAYED when a
    concurrent duplicate already moved the job: its work is billed as superseded, nothing is sent."""
    stage = claimed.stage
    then = STAGES[stage].then
    assert then is not None, f"the {stage} stage ends jobs; it hands nothing on"
    _record(session, claimed, usage)
    if not repo.move_status(
        session, job_id=claimed.job_id, expect=STAGES[stage].status, to=next_status(stage), **fields
    ):
        _superseded(session, claimed)
        return Moved.STAYED
    outbox_rows.enqueue(session, job_id=claimed.job_id, task=STAGES[then].task)
    return Moved.ON


def complete(
    session: Session,
    claimed: Claimed[Any],
    usage: Usage,
    summary: str,
    tier: Tier,
    degraded: JobError | None = None,
) -> Moved:
    """Prices the stage's usage and ends the job with `summary`: done, or degraded with the reason. ENDED when
    its webhook is now due.

    A job never ends with an empty summary: that is `empty_summary`, a failure, not a result.
    """
    if not summary.strip():
        raise JobError("empty_summary", f"the {tier} model wrote an empty summary; nothing usable to return")
    _record(session, claimed, usage)
    extra = {"error_code": degraded.code, "error_message": degraded.message} if degraded else {}
    to, expect = JobStatus.DEGRADED if degraded else JobStatus.DONE, STAGES[claimed.stage].status
    if not repo.move_status(
        session, job_id=claimed.job_id, expect=expect, to=to, summary=summary, tier=tier, **extra
    ):
        _superseded(session, claimed)
        return Moved.STAYED
    return Moved.ENDED if deliveries.pending(session, job_id=claimed.job_id) else Moved.STAYED


def end_job(job_id: uuid.UUID, error: JobError) -> bool:
    """Ends the job with `error` (unless it has ended already), closing its open attempts; True when its
    webhook is now due."""
    with session_scope() as session:
        failpoints.hit(Point.ENDING_JOB)
        ended = repo.end_with_error(session, job_id=job_id, error=error)
        calls.forget(session, job_id=job_id)
        if ended:
            ledger.close_open_runs(session, job_id=job_id, outcome=RunOutcome.FAILED)
        due = ended and deliveries.pending(session, job_id=job_id)
        # What its large attempts cost (nothing for an escalation that never ran).
        budget.settle(
            session, job_id=job_id, cost=ledger.stage_total(session, job_id=job_id, stage=Stage.LARGE)
        )
    log.log(
        logging.WARNING if ended else logging.INFO,
        "job ended: %s",
        error,
        extra={"job_id": str(job_id), "code": error.code},
    )
    return due


@contextmanager
def job_errors(job_id: uuid.UUID, outcome: StageOutcome) -> Iterator[None]:
    """Turns any error inside a stage into an ended job with a code, except a lost database (retried); a job it
    ends with a webhook due goes into `outcome.announce`.

    Every log line written inside carries the job's id.
    """
    with job_context(job_id):
        try:
            yield
        except JobError as error:
            _ended(outcome, job_id, error)
        except SoftTimeLimitExceeded:  # Celery's limit on a prefork stage (ingest, gate)
            _ended(outcome, job_id, stage_timeout(get_settings().stage_time_limit_s))
        except OperationalError:
            raise  # the database went away: the task retries, the job keeps its state
        except Exception as exc:  # a bug must not leave the job stuck mid-pipeline
            log.exception("stage crashed")
            _ended(outcome, job_id, JobError("internal_error", f"{type(exc).__name__}: {exc}"))


def _ended(outcome: StageOutcome, job_id: uuid.UUID, error: JobError) -> None:
    if end_job(job_id, error):
        outcome.announce.append(job_id)
