"""Webhook deliveries in the database: which jobs are due, one delivery at a time per job, every attempt kept."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, insert, update
from sqlmodel import Session, col, select

from shared.db.models import TERMINAL, Job, WebhookAttempt, WebhookState, table_of, utcnow


def pending(session: Session, *, job_id: uuid.UUID) -> bool:
    """Whether the ended job has a webhook still to deliver."""
    state = session.exec(select(Job.webhook_state).where(Job.id == job_id)).first()
    return state is WebhookState.PENDING


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """An ended job whose delivery is pending and whose due time has come."""
    return (
        col(Job.webhook_state) == WebhookState.PENDING,
        col(Job.webhook_due_at) <= now,
        col(Job.status).in_(TERMINAL),
    )


@dataclass(frozen=True)
class Delivery:
    job_id: uuid.UUID
    url: str
    tenant: str
    finished_at: datetime
    attempt: int  # this one's number: 1, 2, ...


def claim(session: Session, *, job_id: uuid.UUID, lease_s: float) -> Delivery | None:
    """Takes the job's due delivery for `lease_s` (a worker that dies mid-POST is retried after it); None when
    it is not due, already delivered or given up, or another worker holds it."""
    c, now = table_of(Job).c, utcnow()
    row = (
        session.connection()
        .execute(
            update(Job)
            .where(col(Job.id) == job_id, *_due(now))
            .values(webhook_due_at=now + timedelta(seconds=lease_s))
            .returning(c.webhook_url, c.tenant, c.finished_at)
        )
        .first()
    )
    if row is None:
        return None
    done = session.exec(select(func.count()).where(WebhookAttempt.job_id == job_id)).one()
    return Delivery(job_id, row.webhook_url, row.tenant, row.finished_at or now, done + 1)


def record(
    session: Session,
    *,
    delivery: Delivery,
    status_code: int | None,
    latency_ms: float | None,
    error: str | None,
    state: WebhookState,
    retry_at: datetime | None = None,
) -> None:
    """Keeps the attempt, and moves the job's delivery to `state` (pending: due again at `retry_at`)."""
    session.connection().execute(
        insert(WebhookAttempt).values(
            job_id=delivery.job_id,
            attempt=delivery.attempt,
            status_code=status_code,
            latency_ms=latency_ms,
            error=None if error is None else error[:512],
            at=utcnow(),
        )
    )
    session.connection().execute(
        update(Job).where(col(Job.id) == delivery.job_id).values(webhook_state=state, webhook_due_at=retry_at)
    )


def due(session: Session, *, limit: int) -> list[uuid.UUID]:
    """Ended jobs whose delivery is due: first attempts whose message was lost, retries whose backoff passed,
    deliveries whose worker died past its lease."""
    stmt = select(Job.id).where(*_due(utcnow())).order_by(col(Job.webhook_due_at)).limit(limit)
    return list(session.exec(stmt).all())
