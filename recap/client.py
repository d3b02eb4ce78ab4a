"""Submitting transcripts and reading jobs back: what `recap submit` and `recap status` do."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError

from services.ingest.decode import read_capped
from shared.config import Settings
from shared.db import repository as repo
from shared.db.session import session_scope
from shared.errors import InputError
from shared.prompts import SummaryLength
from shared.schemas import JobView
from shared.stages import FIRST, STAGES


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
    """Stores the file as a new job and enqueues its ingestion.

    An oversized file is not read: its job is created already rejected, so it can be queried like any other.
    """
    try:
        raw, error = read_capped(path, settings.max_transcript_bytes), None
    except InputError as exc:
        raw, error = b"", exc
    with session_scope(settings.database_url) as session:
        job = repo.create_job(
            session,
            raw=raw,
            tenant=tenant,
            source_name=path.name,
            summary_length=length or settings.default_summary_length,
            requested_format=format,
        )
        if error is not None:
            repo.end_with_error(session, job_id=job.id, error=error)
    if error is None:
        # The message carries the id only; the transcript waits in the database (claim check).
        app.send_task(STAGES[FIRST].task, kwargs={"job_id": str(job.id)})
    return job.id


def view(settings: Settings, job_id: uuid.UUID) -> JobView | None:
    with session_scope(settings.database_url) as session:
        return repo.job_view(session, job_id=job_id)


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
