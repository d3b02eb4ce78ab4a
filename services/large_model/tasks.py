"""Celery wrapper of the large-model stage."""

from __future__ import annotations

import uuid

from services.large_model.summarize import summarize_large_job
from shared.celery_app import app
from shared.task_names import SUMMARIZE_LARGE
from shared.tasks import RETRY


@app.task(name=SUMMARIZE_LARGE, **RETRY)
def summarize(job_id: str) -> None:
    """Consumes `large`: the large model's summary ends the job."""
    summarize_large_job(uuid.UUID(job_id))
