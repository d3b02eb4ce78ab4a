"""How a transcript becomes a job: one path for `recap submit` and `POST /v1/jobs`.

The job row, its raw transcript and ingestion's outbox message are written in one transaction; the message is sent
after the commit (a broker that is down leaves it to the sweeper's relay: the job is accepted all the same).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy import update
from sqlmodel import Session, col, select

from shared import failpoints, outbox
from shared.config import Settings
from shared.db import outbox as outbox_rows
from shared.db import repository as repo
from shared.db import views
from shared.db.models import IdempotencyKey, table_of, utcnow
from shared.db.session import session_scope
from shared.errors import InputError
from shared.failpoints import Point
from shared.prompts import SummaryLength
from shared.schemas import JobView
from shared.stages import FIRST, STAGES


@dataclass(frozen=True)
class Submission:
    raw: bytes
    tenant: str
    source_name: str | None
    length: SummaryLength
    format: str | None = None
    webhook_url: str | None = None
    meta: dict[str, Any] | None = None
    # Input refused before it was stored (too large): the job is created already rejected, queryable like any.
    error: InputError | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """What an Idempotency-Key is compared on: the transcript and every option that shapes the job."""
        h = hashlib.sha256()
        # The same metadata in another key order is the same request.
        meta = json.dumps(self.meta, sort_keys=True)
        for part in (self.source_name, self.length, self.format, self.webhook_url, meta):
            h.update(str(part).encode() + b"\0")
        h.update(self.raw)
        return h.hexdigest()


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used within its lifetime for a different request."""


@dataclass
class Accepted:
    job_id: uuid.UUID
    created: bool  # False: an Idempotency-Key replay, the job is the first request's
    view: JobView | None = None  # a new queued job as users see it (made without reading it back)


class _Replay(Exception):
    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id


def submit(app: Celery, settings: Settings, sub: Submission) -> Accepted:
    """Stores the submission as a new job and enqueues its ingestion (or answers an Idempotency-Key replay)."""
    try:
        with session_scope(settings.database_url) as session:
            job = repo.create_job(
                session,
                raw=sub.raw,
                tenant=sub.tenant,
                source_name=sub.source_name,
                summary_length=sub.length,
                requested_format=sub.format,
                webhook_url=sub.webhook_url,
                meta=sub.meta,
            )
            if sub.idempotency_key is not None:
                earlier = _remember(session, settings, sub, job.id)
                if earlier is not None:
                    raise _Replay(earlier)  # rolls back the job just written
            if sub.error is not None:
                repo.end_with_error(session, job_id=job.id, error=sub.error)
                view = None
            else:  # the message carries the id only; the transcript waits in the database (claim check)
                outbox_rows.enqueue(session, job_id=job.id, task=STAGES[FIRST].task)
                view = views.new_job_view(job)
            failpoints.hit(Point.SUBMIT)
    except _Replay as replay:
        return Accepted(replay.job_id, created=False)
    if sub.error is None:  # a broker that is down leaves the message to the relay: accepted all the same
        outbox.send(app, STAGES[FIRST].task, [job.id], settings.database_url)
    return Accepted(job.id, created=True, view=view)


def _take_over_expired(session: Session, settings: Settings, sub: Submission, job_id: uuid.UUID) -> bool:
    """The tenant's key, if older than RECAP_IDEMPOTENCY_TTL_H, now names `job_id`: whether it did."""
    now = utcnow()
    expired = (
        update(IdempotencyKey)
        .where(
            col(IdempotencyKey.tenant) == sub.tenant,
            col(IdempotencyKey.key) == sub.idempotency_key,
            col(IdempotencyKey.created_at) < now - timedelta(hours=settings.idempotency_ttl_h),
        )
        .values(request_hash=sub.fingerprint(), job_id=job_id, created_at=now)
    )
    return repo.changed(session, expired) == 1


def _remember(session: Session, settings: Settings, sub: Submission, job_id: uuid.UUID) -> uuid.UUID | None:
    """Claims the tenant's Idempotency-Key for `job_id`; None when it is ours now, else the job an earlier request
    with the same key and body created. A key older than RECAP_IDEMPOTENCY_TTL_H is taken over. A concurrent
    request with the same key waits (PostgreSQL) for the first one's commit and then finds its job."""
    assert sub.idempotency_key is not None
    fingerprint, now = sub.fingerprint(), utcnow()
    row = {"tenant": sub.tenant, "key": sub.idempotency_key, "request_hash": fingerprint, "job_id": job_id}
    inserted = (
        session.connection()
        .execute(
            repo.insert_statement(session, IdempotencyKey, row | {"created_at": now})
            .on_conflict_do_nothing(index_elements=["tenant", "key"])
            .returning(table_of(IdempotencyKey).c.key)
        )
        .first()
    )
    if inserted is not None or _take_over_expired(session, settings, sub, job_id):
        return None
    earlier = session.exec(
        select(IdempotencyKey.request_hash, IdempotencyKey.job_id).where(
            IdempotencyKey.tenant == sub.tenant, IdempotencyKey.key == sub.idempotency_key
        )
    ).one()
    if earlier[0] != fingerprint:
        raise IdempotencyConflict(
            f"Idempotency-Key {sub.idempotency_key!r} was used for a different request in the last "
            f"{settings.idempotency_ttl_h:g} h; send a new key for a new request"
        )
    return earlier[1]
