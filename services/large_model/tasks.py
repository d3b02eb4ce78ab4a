"""Celery wrapper of the large-model stage: consumes `large` in micro-batches; the job ends there."""

from __future__ import annotations

from services.large_model.summarize import summarize_large_jobs
from shared.celery_app import app
from shared.config import get_settings
from shared.task_names import SUMMARIZE_LARGE
from shared.tasks import batch_task

summarize = batch_task(
    app,
    SUMMARIZE_LARGE,
    batch_size=get_settings().large_batch_size,
    run=summarize_large_jobs,
    forward_to=None,
)
