"""The notify worker's task (`celery -A services.notify.tasks worker -Q notify`): deliver one job's webhook."""

import uuid

from services.notify.deliver import deliver
from shared.celery_app import app
from shared.stages import NOTIFY_TASK


@app.task(name=NOTIFY_TASK)
def run(job_id: str) -> None:
    # Failures are not Celery retries: the attempt is recorded with its next due time, and the sweeper sends
    # the job again when it is due (durable across restarts of Redis and of this worker).
    deliver(uuid.UUID(job_id))
