"""Worker entry point: `celery -A services.gate.worker worker -Q gate`."""

from services.gate import tasks  # noqa: F401  (registers the task)
from shared.celery_app import app, worker_logs

worker_logs()

__all__ = ["app"]
