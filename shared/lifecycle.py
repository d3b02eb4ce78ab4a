"""What every stage does around its work, in two transactions: claim the job and load what the stage reads
(one), then record its cost and move the job on (two). Errors end the job with a code."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared.config import get_settings
from shared.db import budget
from shared.db import repository as repo
from shared.db.session import session_scope
from shared.errors import JobError
from shared.logs import job_context
from shared.prompts import SummaryLength
from shared.schemas import Usage
from shared.stages import FIRST, STAGES, Stage, next_status
from shared.states import JobStatus, Tier

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a stage reads of its job, inside the claim's transaction (the job row is locked and current).
Load = Callable[[Session, repo.JobRow], T]


def claim(job_id: uuid.UUID, stage: Stage, load: Load[T]) -> T | None:
    """What `load` read of the job, if this delivery should work on it; None for a duplicate or an ended job
    (ack and move on). One transaction: lock the job, check its status, count the delivery, load."""
    own = STAGES[stage].status
    # A new job is taken by the first stage; any later delivery must find the job in the stage's own status.
    accept = (own, JobStatus.QUEUED) if stage is FIRST else (own,)
    limit = get_settings().max_deliveries
    with session_scope() as session:
        job = repo.take_job(session, job_id=job_id, to=own, accept=accept)
        if job is None:
            log.info(
                "not claimed: no such job, or a duplicate delivery",
                extra={"job_id": str(job_id), "stage": stage},
            )
            return None
        deliveries = repo.count_delivery(session, job_id=job_id, stage=stage)
        if deliveries <= limit:
            return load(session, job)
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


def _record(session: Session, *, job_id: uuid.UUID, stage: Stage, usage: Usage) -> None:
    settings = get_settings()
    cost = repo.record_usage(
        session,
        job_id=job_id,
        stage=stage,
        usage=usage,
        price=settings.price_for(usage.model, usage.device),
        price_version=settings.price_version,
    )
    if stage is Stage.LARGE:
        budget.settle(session, job_id=job_id, cost=cost)  # the reservation becomes the real cost


def advance(session: Session, *, job_id: uuid.UUID, stage: Stage, usage: Usage, **fields: Any) -> bool:
    """Prices the stage's usage into its ledger row and hands the job to the next stage, in the caller's
    transaction (with `fields`, more of the job row). False when a concurrent duplicate already moved the job:
    the caller must not send it on."""
    _record(session, job_id=job_id, stage=stage, usage=usage)
    return repo.move_status(
        session, job_id=job_id, expect=STAGES[stage].status, to=next_status(stage), **fields
    )


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
    _record(session, job_id=job_id, stage=stage, usage=usage)
    extra: dict[str, Any] = (
        {"error_code": degraded.code, "error_message": degraded.message} if degraded else {}
    )
    repo.move_status(
        session,
        job_id=job_id,
        expect=STAGES[stage].status,
        to=JobStatus.DEGRADED if degraded else JobStatus.DONE,
        summary=summary,
        tier=tier,
        **extra,
    )


def end_job(job_id: uuid.UUID, error: JobError) -> None:
    with session_scope() as session:
        ended = repo.end_with_error(session, job_id=job_id, error=error)
        budget.settle(session, job_id=job_id, cost=Decimal(0))  # an escalation that never ran costs nothing
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
        except OperationalError:
            raise  # the database went away: the task retries, the job keeps its state
        except Exception as exc:  # a bug must not leave the job stuck mid-pipeline
            log.exception("stage crashed")
            end_job(job_id, JobError("internal_error", f"{type(exc).__name__}: {exc}"))
