"""Worker entry point: `celery -A services.large_model.worker worker -Q large`."""

from services.large_model import tasks  # noqa: F401  (registers the task)
from shared.celery_app import app, worker_logs

worker_logs()

__all__ = ["app"]
