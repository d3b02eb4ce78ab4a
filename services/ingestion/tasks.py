"""Celery wrapper of the ingestion stage."""

from __future__ import annotations

import uuid

from services.ingestion.ingest import ingest_job
from shared.celery_app import app
from shared.task_names import INGEST, SUMMARIZE_SMALL
from shared.tasks import RETRY


@app.task(name=INGEST, **RETRY)
def ingest(job_id: str) -> None:
    """Consumes `ingest`: parses and stores the transcript; enqueues `small`."""
    if ingest_job(uuid.UUID(job_id)):
        app.send_task(SUMMARIZE_SMALL, kwargs={"job_id": job_id})
