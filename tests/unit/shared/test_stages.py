"""The stage table: every name and route the system uses derives from it, and each row has its package."""

import importlib

import pytest

from recap.commands import worker_command
from shared.celery_app import app
from shared.config import Settings
from shared.stages import FIRST, ROUTES, STAGES, Stage, next_status
from shared.states import JobStatus


def test_the_table_chains_the_stages_in_order_and_the_last_ends_jobs() -> None:
    assert FIRST is Stage.INGEST
    order, stage = [], FIRST
    while stage is not None:
        order.append(stage)
        stage = STAGES[stage].then
    assert order == list(STAGES) == [Stage.INGEST, Stage.SMALL, Stage.GATE, Stage.LARGE]
    assert [next_status(s) for s in order[:-1]] == [
        JobStatus.SUMMARIZING,
        JobStatus.GATING,
        JobStatus.ESCALATED,
    ]
    with pytest.raises(ValueError, match="last"):
        next_status(Stage.LARGE)


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_has_one_name_for_its_queue_package_task_and_node(stage: Stage) -> None:
    spec = STAGES[stage]
    assert "_" not in stage and ROUTES[spec.task] == {"queue": str(stage)}
    importlib.import_module(spec.worker_module)  # services/<stage>/tasks.py registers the stage's one task
    assert spec.task == f"{stage}.run" and spec.task in app.tasks
    command = worker_command(spec, Settings(_env_file=None))
    assert command[command.index("-A") + 1] == f"services.{stage}.tasks"
    assert command[command.index("-Q") + 1] == str(stage) and f"{stage}@%h" in command
    assert ("solo" in command) is spec.batched  # a model stage: one process holding the model


def test_every_unfinished_status_belongs_to_one_stage() -> None:
    from shared.stages import STAGE_OF_STATUS
    from shared.states import TERMINAL, JobStatus

    assert set(STAGE_OF_STATUS) == set(JobStatus) - TERMINAL
    assert STAGE_OF_STATUS[JobStatus.QUEUED] is STAGE_OF_STATUS[JobStatus.INGESTING] is Stage.INGEST
    owned = {status: stage for status, stage in STAGE_OF_STATUS.items() if status is not JobStatus.QUEUED}
    assert all(STAGES[stage].status is status for status, stage in owned.items())
