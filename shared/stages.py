"""What every stage does around its work: claim the job, count deliveries, record cost, move on, end on error."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared.config import get_settings
from shared.db import budget
from shared.db import repository as repo
from shared.db.models import Job, JobStatus
from shared.db.session import session_scope
from shared.errors import JobError
from shared.logs import job_context
from shared.schemas import Usage

log = logging.getLogger(__name__)


class Stage(StrEnum):
    INGEST = "ingest"
    SMALL = "small"
    GATE = "gate"
    LARGE = "large"


# The status a job holds while a stage works on it. A delivery that finds any other status is a duplicate.
RUNS_IN: dict[Stage, JobStatus] = {
    Stage.INGEST: JobStatus.INGESTING,
    Stage.SMALL: JobStatus.SUMMARIZING,
    Stage.GATE: JobStatus.GATING,
    Stage.LARGE: JobStatus.ESCALATED,
}


def claim(job_id: uuid.UUID, stage: Stage) -> Job | None:
    """The job, if this delivery should work on it; None for a duplicate or an ended job (ack and move on)."""
    own = RUNS_IN[stage]
    with session_scope() as session:
        job = repo.get_job(session, job_id=job_id, lock=True)
        if job is None:
            log.warning("no such job", extra={"job_id": str(job_id), "stage": stage})
            return None
        if stage is Stage.INGEST and job.status == JobStatus.QUEUED:
            repo.move_status(session, job_id=job_id, expect=JobStatus.QUEUED, to=own)
        elif job.status != own:
            log.info("duplicate delivery skipped", extra={"job_id": str(job_id), "stage": stage})
            return None
        deliveries = repo.count_delivery(session, job_id=job_id, stage=stage)
    limit = get_settings().max_deliveries
    if deliveries > limit:
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
    return job


def load_turns(job_id: uuid.UUID) -> list[tuple[str | None, str]]:
    """The job's normalized turns as (speaker, text), as ingestion stored them."""
    with session_scope() as session:
        turns = repo.get_transcript(session, job_id=job_id).turns
    if not turns:
        raise JobError("turns_missing", f"job {job_id} reached a model stage without ingested turns")
    return [(t.get("speaker"), t["text"]) for t in turns]


def finish(
    session: Session, *, job_id: uuid.UUID, stage: Stage, usage: Usage, to: JobStatus, **fields: Any
) -> bool:
    """Prices the stage's usage into its ledger row and moves the job on, in the caller's transaction.

    False when a concurrent duplicate already moved the job: the caller must not enqueue the next stage again.
    A job never ends with an empty summary: that is `empty_summary`, a failure, not a result.
    """
    if to in (JobStatus.DONE, JobStatus.DEGRADED) and not str(fields.get("summary") or "").strip():
        raise JobError(
            "empty_summary",
            f"the {fields.get('tier') or stage} model wrote an empty summary; nothing usable to return",
        )
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
    return repo.move_status(session, job_id=job_id, expect=RUNS_IN[stage], to=to, **fields)


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
