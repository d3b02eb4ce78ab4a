"""Every read and write of job state. Keyword-only functions over a caller's session; they never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, case, func, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel, col, select

from shared.db import outbox as outbox_rows
from shared.db.models import (
    TERMINAL,
    GateDecision,
    Job,
    JobStatus,
    Summary,
    Transcript,
    WebhookState,
    table_of,
    utcnow,
)
from shared.errors import JobError
from shared.stages import STAGE_OF_STATUS


def changed(session: Session, stmt: Executable) -> int:
    """Runs a DML statement on the session's connection (Core: no ORM bookkeeping); the rows it changed."""
    return session.connection().execute(stmt).rowcount


def insert_statement(session: Session, model: type[SQLModel], values: dict[str, Any]) -> Any:
    """An INSERT that knows ON CONFLICT, for Postgres and SQLite alike."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table_of(model)).values(**values)


def _upsert(session: Session, model: type[SQLModel], keys: Sequence[str], values: dict[str, Any]) -> None:
    updates = {k: v for k, v in values.items() if k not in keys}
    session.connection().execute(
        insert_statement(session, model, values).on_conflict_do_update(
            index_elements=list(keys), set_=updates
        )
    )


def create_job(
    session: Session,
    *,
    raw: bytes,
    tenant: str,
    source_name: str | None,
    summary_length: str = "medium",
    requested_format: str | None = None,
    webhook_url: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Job:
    job = Job(
        tenant=tenant,
        source_name=source_name,
        summary_length=summary_length,
        requested_format=requested_format,
        webhook_url=webhook_url,
        meta=meta,
        webhook_state=WebhookState.PENDING if webhook_url else None,
    )
    # Core inserts with their parameters apart, not the ORM's flush: one compiled statement, cached, for the
    # API's hot path (it halved a POST's time). The row is then handed to the session as persistent, so callers
    # can still change it through the ORM.
    row = {k: v for k, v in job.model_dump().items() if v is not None}
    session.connection().execute(insert(Job), [row])
    session.connection().execute(insert(Transcript), [{"job_id": job.id, "raw": raw}])
    make_transient_to_detached(job)
    session.add(job)
    return job


@dataclass(frozen=True)
class JobRow:
    """What a stage needs of its job row, read under the claim's lock."""

    id: uuid.UUID
    status: JobStatus
    tenant: str
    summary_length: str
    requested_format: str | None
    requeued_at: datetime | None


def take_job(
    session: Session, *, job_id: uuid.UUID, to: JobStatus, accept: Sequence[JobStatus], by: str
) -> JobRow | None:
    """Moves the job to `to` if it holds one of `accept` (its own status among them) and records `by` as the
    process working on it, in one statement that also locks the row until the transaction ends and returns
    what a stage needs; None: no such job, or one in another status (a duplicate delivery)."""
    c = table_of(Job).c
    now = utcnow()
    stmt = (
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(accept))
        .values(status=to, updated_at=now, claimed_by=by, claimed_at=now)
        .returning(c.id, c.status, c.tenant, c.summary_length, c.requested_format, c.requeued_at)
    )
    row = session.connection().execute(stmt).first()
    return None if row is None else JobRow(**row._mapping)


def release(session: Session, *, job_id: uuid.UUID) -> None:
    """Lets go of the job's claim (its status stays): a long job between two slices is waiting, not worked on."""
    session.connection().execute(
        update(Job).where(col(Job.id) == job_id).values(claimed_by=None, claimed_at=None, updated_at=utcnow())
    )


def get_raw(session: Session, *, job_id: uuid.UUID) -> bytes:
    raw = session.connection().execute(select(Transcript.raw).where(Transcript.job_id == job_id)).scalar()
    if raw is None:
        raise JobError("transcript_missing", f"job {job_id} has no stored transcript")
    return bytes(raw)


def get_turns(session: Session, *, job_id: uuid.UUID) -> list[dict[str, Any]] | None:
    turns: list[dict[str, Any]] | None = (
        session.connection().execute(select(Transcript.turns).where(Transcript.job_id == job_id)).scalar()
    )
    return turns


def move_status(
    session: Session, *, job_id: uuid.UUID, expect: JobStatus, to: JobStatus, **fields: Any
) -> bool:
    """Compare-and-set the status; False when another delivery moved the job first (so never backwards)."""
    if to in TERMINAL:
        fields.setdefault("finished_at", utcnow())
        fields.setdefault("webhook_due_at", fields["finished_at"])  # its webhook (if any) is due now
    stmt = (
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status) == expect)
        .values(status=to, updated_at=utcnow(), claimed_by=None, claimed_at=None, sweeps=0, **fields)
    )
    return changed(session, stmt) == 1


def end_with_error(session: Session, *, job_id: uuid.UUID, error: JobError) -> bool:
    """Ends a job that has not ended yet as rejected/failed with the error's code and message, noting the stage
    it was in (where `recap jobs retry` starts it again)."""
    status = col(Job.status)
    stmt = (
        update(Job)
        .where(col(Job.id) == job_id, status.not_in(TERMINAL))
        .values(
            status=error.status,
            error_code=error.code,
            error_message=error.message,
            error_stage=case({str(k): str(v) for k, v in STAGE_OF_STATUS.items()}, value=status),
            claimed_by=None,
            claimed_at=None,
            updated_at=utcnow(),
            finished_at=utcnow(),
            webhook_due_at=utcnow(),
        )
    )
    return changed(session, stmt) == 1


def resend(session: Session, *, job_id: uuid.UUID, version: datetime, task: str) -> bool:
    """The sweeper's move: counts a sweep, releases the job's claim and writes its stage message into the
    outbox, unless the job changed since the sweeper read it (`version`: its `updated_at`)."""
    stmt = (
        update(Job)
        .where(col(Job.id) == job_id, col(Job.updated_at) == version, col(Job.status).not_in(TERMINAL))
        .values(sweeps=col(Job.sweeps) + 1, claimed_by=None, claimed_at=None, updated_at=utcnow())
    )
    if changed(session, stmt) != 1:
        return False
    outbox_rows.enqueue(session, job_id=job_id, task=task)
    return True


def requeue(session: Session, *, job_id: uuid.UUID, status: JobStatus, task: str) -> bool:
    """`recap jobs retry`: a failed job back into `status` as a new run (its delivery count starts again, its
    ledger rows stay), its message in the outbox."""
    now = utcnow()
    stmt = (
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status) == JobStatus.FAILED)
        .values(
            status=status,
            error_code=None,
            error_message=None,
            error_stage=None,
            finished_at=None,
            sweeps=0,
            requeued_at=now,
            updated_at=now,
        )
    )
    if changed(session, stmt) != 1:
        return False
    outbox_rows.enqueue(session, job_id=job_id, task=task)
    return True


def save_turns(session: Session, *, job_id: uuid.UUID, turns: list[dict[str, Any]]) -> None:
    session.connection().execute(
        update(Transcript)
        .where(col(Transcript.job_id) == job_id)
        .values(turns=turns, n_turns=len(turns), n_words=sum(len(t["text"].split()) for t in turns))
    )


def save_summary(
    session: Session,
    *,
    job_id: uuid.UUID,
    tier: str,
    model: str,
    text: str,
    scores: dict[str, float] | None,
    **made: Any,
) -> None:
    """Upserts a tier's summary; `made` holds how it was made (chunks, levels, calls, truncation_ratio)."""
    _upsert(
        session,
        Summary,
        ("job_id", "tier"),
        {
            "job_id": job_id,
            "tier": tier,
            "model": model,
            "text": text,
            "scores": scores,
            "created_at": utcnow(),
            **made,
        },
    )


def get_summary(session: Session, *, job_id: uuid.UUID, tier: str) -> Summary | None:
    return session.exec(select(Summary).where(Summary.job_id == job_id, Summary.tier == tier)).first()


def save_decision(session: Session, *, decision: GateDecision) -> None:
    _upsert(session, GateDecision, ("job_id",), decision.model_dump())


def count_unfinished(session: Session, *, job_ids: Sequence[uuid.UUID]) -> int:
    stmt = select(func.count()).where(
        col(Job.id).in_(list(job_ids)),
        col(Job.status).not_in(TERMINAL),
    )
    return session.exec(stmt).one()
