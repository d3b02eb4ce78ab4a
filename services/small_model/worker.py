"""Worker entry point: `celery -A services.small_model.worker worker -Q small`."""

from services.small_model import tasks  # noqa: F401  (registers the task)
from shared.celery_app import app, worker_logs

worker_logs()

__all__ = ["app"]
