"""Worker entry point: `celery -A services.ingestion.worker worker -Q ingest`."""

from services.ingestion import tasks  # noqa: F401  (registers the task)
from shared.celery_app import app, worker_logs

worker_logs()

__all__ = ["app"]
