"""Submitting transcripts and reading jobs back: what `recap submit` and `recap status` do."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlmodel import col, select

from services.ingest.decode import read_capped
from shared import intake, outbox
from shared.config import Settings
from shared.db import budget, views
from shared.db import repository as repo
from shared.db.models import Job
from shared.db.session import session_scope
from shared.errors import InputError
from shared.prompts import SummaryLength
from shared.schemas import JobView
from shared.stages import FIRST, STAGES, Stage
from shared.states import JobStatus


class BrokerUnavailable(RuntimeError):
    pass


def check_broker(app: Celery, settings: Settings) -> None:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
    except (BrokerError, OSError) as exc:
        hint = "start the local stack with `recap up`" if not settings.redis_url else "check REDIS_URL"
        raise BrokerUnavailable(f"cannot reach the broker at {settings.broker_url}: {hint}") from exc


def submit_file(
    app: Celery,
    settings: Settings,
    path: Path,
    *,
    tenant: str,
    length: SummaryLength | None = None,
    format: str | None = None,
) -> uuid.UUID:
    """Stores the file as a new job and enqueues its ingestion (the API's path: shared/intake.py).

    An oversized file is not read: its job is created already rejected, so it can be queried like any other.
    """
    try:
        raw, error = read_capped(path, settings.max_transcript_bytes), None
    except InputError as exc:
        raw, error = b"", exc
    submission = intake.Submission(
        raw=raw,
        tenant=tenant,
        source_name=path.name,
        length=length or settings.default_summary_length,
        format=format,
        error=error,
    )
    return intake.submit(app, settings, submission).job_id


def view(settings: Settings, job_id: uuid.UUID) -> JobView | None:
    with session_scope(settings.database_url) as session:
        return views.job_view(session, job_id=job_id)


def wait_for(
    settings: Settings,
    job_ids: list[uuid.UUID],
    *,
    timeout: float,
    poll: float = 0.25,
    on_progress: Callable[[int], None] | None = None,
) -> list[JobView]:
    """Polls (one cheap query per poll) until every job has ended or `timeout` passes; returns their views.

    `on_progress` hears how many jobs have ended, whenever that number changes.
    """
    deadline = time.monotonic() + timeout
    ended = -1
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as session:
            unfinished = repo.count_unfinished(session, job_ids=job_ids)
        if on_progress and len(job_ids) - unfinished != ended:
            ended = len(job_ids) - unfinished
            on_progress(ended)
        if unfinished == 0:
            break
        time.sleep(poll)
    return [v for v in (view(settings, j) for j in job_ids) if v is not None]


def list_jobs(
    settings: Settings,
    *,
    status: JobStatus | None = None,
    code: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[JobView]:
    """Jobs newest first, filtered by status, error code and creation time."""
    stmt = select(Job.id).order_by(col(Job.created_at).desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if code is not None:
        stmt = stmt.where(Job.error_code == code)
    if since is not None:
        stmt = stmt.where(col(Job.created_at) >= since)
    with session_scope(settings.database_url) as session:
        ids = session.exec(stmt).all()
        return views.job_views(session, job_ids=list(ids))


# Where a failed job starts again: the stage it failed in, except that a failed escalation goes back through the
# gate, which decides again and reserves its budget again (the failure released the first reservation).
RETRY_FROM = {
    Stage.INGEST: Stage.INGEST,
    Stage.SMALL: Stage.SMALL,
    Stage.GATE: Stage.GATE,
    Stage.LARGE: Stage.GATE,
}


def retry(
    app: Celery, settings: Settings, *, job_ids: Sequence[uuid.UUID] = (), code: str | None = None
) -> list[tuple[uuid.UUID, Stage]]:
    """Requeues failed jobs (those named, or every one failed with `code`) as a new run from the stage they
    failed in; their ledger rows stay. Returns the jobs requeued and where; jobs not failed are left alone."""
    with session_scope(settings.database_url) as session:
        stmt = select(Job.id, Job.error_stage).where(Job.status == JobStatus.FAILED)
        if job_ids:
            stmt = stmt.where(col(Job.id).in_(list(job_ids)))
        if code is not None:
            stmt = stmt.where(Job.error_code == code)
        failed = session.exec(stmt).all()
    requeued: list[tuple[uuid.UUID, Stage]] = []
    for job_id, error_stage in failed:
        stage = RETRY_FROM[Stage(error_stage or FIRST)]
        task = STAGES[stage].task
        with session_scope(settings.database_url) as session:
            if stage is Stage.GATE:
                budget.forget_released(session, job_id=job_id)
            status = JobStatus.QUEUED if stage is FIRST else STAGES[stage].status
            if not repo.requeue(session, job_id=job_id, status=status, task=task):
                continue
        outbox.send(app, task, [job_id], settings.database_url)
        requeued.append((job_id, stage))
    return requeued
