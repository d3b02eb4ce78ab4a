"""Celery wrapper of the gate stage."""

from __future__ import annotations

import uuid

from services.gate.gate import gate_job
from shared.celery_app import app
from shared.task_names import GATE, SUMMARIZE_LARGE
from shared.tasks import RETRY


@app.task(name=GATE, **RETRY)
def decide(job_id: str) -> None:
    """Consumes `gate`: accepts the small summary (job done) or enqueues `large`."""
    if gate_job(uuid.UUID(job_id)):
        app.send_task(SUMMARIZE_LARGE, kwargs={"job_id": job_id})
