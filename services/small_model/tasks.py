"""Celery wrapper of the small-model stage."""

from __future__ import annotations

import uuid

from services.small_model.summarize import summarize_job
from shared.celery_app import app
from shared.task_names import GATE, SUMMARIZE_SMALL
from shared.tasks import RETRY


@app.task(name=SUMMARIZE_SMALL, **RETRY)
def summarize(job_id: str) -> None:
    """Consumes `small`: FLAN-T5 summary plus margins; enqueues `gate`."""
    if summarize_job(uuid.UUID(job_id)):
        app.send_task(GATE, kwargs={"job_id": job_id})
