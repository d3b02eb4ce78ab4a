"""Celery wrapper of the small-model stage: consumes `small` in micro-batches, enqueues `gate`."""

from __future__ import annotations

from services.small_model.summarize import summarize_jobs
from shared.celery_app import app
from shared.config import get_settings
from shared.task_names import GATE, SUMMARIZE_SMALL
from shared.tasks import batch_task

summarize = batch_task(
    app, SUMMARIZE_SMALL, batch_size=get_settings().small_batch_size, run=summarize_jobs, forward_to=GATE
)
