"""The outbox: a job's next message, written in the transaction that moved the job, deleted once Redis holds it
(shared/outbox.py sends and relays). Keyword-only functions over a caller's session; they never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from shared.db.models import Outbox, utcnow


def enqueue(session: Session, *, job_id: uuid.UUID, task: str) -> None:
    """Writes the job's next message into the outbox, in the transaction that moved the job."""
    session.connection().execute(insert(Outbox), [{"job_id": job_id, "task": task, "created_at": utcnow()}])


def dequeue(session: Session, *, job_ids: Sequence[uuid.UUID], task: str) -> None:
    """Deletes outbox rows that Redis now holds."""
    session.connection().execute(
        delete(Outbox).where(col(Outbox.job_id).in_(list(job_ids)), col(Outbox.task) == task)
    )


def unsent(session: Session, *, older_than: datetime, limit: int) -> list[tuple[int, uuid.UUID, str]]:
    """Outbox rows whose sender died or could not reach Redis, oldest first; locked (skipping rows another
    relay holds) until the caller's transaction ends."""
    stmt = (
        select(Outbox.id, Outbox.job_id, Outbox.task)
        .where(col(Outbox.created_at) < older_than)
        .order_by(col(Outbox.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row.id, row.job_id, row.task) for row in session.connection().execute(stmt).all()]


def drop_outbox(session: Session, *, ids: Sequence[int]) -> None:
    session.connection().execute(delete(Outbox).where(col(Outbox.id).in_(list(ids))))
