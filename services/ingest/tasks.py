"""The ingest worker's task (`celery -A services.ingest.tasks worker -Q ingest`): parse, store, send to `small`."""

from services.ingest.parse import check
from services.ingest.stage import ingest_job
from shared.celery_app import app
from shared.config import get_settings
from shared.stage_tasks import job_task
from shared.stages import Stage

check(get_settings())  # unknown cleaning steps would fail every job: refuse to start instead
run = job_task(app, Stage.INGEST, ingest_job)
