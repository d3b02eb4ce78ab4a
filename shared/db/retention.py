"""Erasing meeting text: on request (DELETE /v1/jobs/{id}) and past RECAP_RETENTION_DAYS (the
sweeper). The job row, its gate decision and its ledger stay. Keyword-only functions over a caller's session."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from shared.db.models import TERMINAL, Job, Summary, Transcript, utcnow


def erase(session: Session, *, job_ids: Sequence[uuid.UUID]) -> int:
    """Deletes the jobs' meeting text (transcript, summaries, the job's summary, source name and metadata); the
    job row, its gate decision and its ledger (tokens, seconds, costs) stay. Only ended jobs; returns how many."""
    ids = list(
        session.exec(
            select(Job.id).where(col(Job.id).in_(list(job_ids)), col(Job.status).in_(TERMINAL))
        ).all()
    )
    if not ids:
        return 0
    session.connection().execute(delete(Transcript).where(col(Transcript.job_id).in_(ids)))
    session.connection().execute(delete(Summary).where(col(Summary.job_id).in_(ids)))
    session.connection().execute(
        update(Job)
        .where(col(Job.id).in_(ids))
        .values(summary=None, source_name=None, meta=None, erased_at=utcnow(), updated_at=utcnow())
    )
    return len(ids)


def expired(session: Session, *, ended_before: datetime, limit: int) -> list[uuid.UUID]:
    """Ended jobs whose text outlived the retention period and is not erased yet."""
    stmt = (
        select(Job.id)
        .where(
            col(Job.status).in_(TERMINAL),
            col(Job.finished_at) < ended_before,
            col(Job.erased_at).is_(None),
        )
        .limit(limit)
    )
    return list(session.exec(stmt).all())
