"""The large worker's task (`celery -A services.large.tasks worker -Q large`): micro-batches; jobs end here."""

from services.large.stage import summarize_large_jobs
from shared.celery_app import app
from shared.stage_tasks import batch_task
from shared.stages import Stage

run = batch_task(app, Stage.LARGE, summarize_large_jobs)
