"""The small worker's task (`celery -A services.small.tasks worker -Q small`): micro-batches, then `gate`."""

from inference.scores import check_score
from services.small.stage import summarize_jobs
from shared.celery_app import app
from shared.config import get_settings
from shared.stage_tasks import batch_task
from shared.stages import Stage

check_score(
    get_settings()
)  # the gate's score must be one this small model can give: refuse to start otherwise
run = batch_task(app, Stage.SMALL, summarize_jobs)
