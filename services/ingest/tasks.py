"""The ingest worker's task (`celery -A services.ingest.tasks worker -Q ingest`): parse, store, send to `small`."""

from services.ingest.stage import ingest_job
from shared.celery_app import app
from shared.stage_tasks import job_task
from shared.stages import Stage

run = job_task(app, Stage.INGEST, ingest_job)
