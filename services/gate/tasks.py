"""The gate worker's task (`celery -A services.gate.tasks worker -Q gate`): accept (the job ends) or send `large`."""

from services.gate.policies import check
from services.gate.stage import gate_job
from shared.celery_app import app
from shared.config import get_settings
from shared.stage_tasks import job_task
from shared.stages import Stage

check(get_settings())
run = job_task(app, Stage.GATE, gate_job)
