"""The stage table: every stage's one name, its order, and what its worker runs. Everything else derives from it.

A stage's name is its queue, its package (`services/<name>/`), its task prefix (`<name>.run`), its worker's node
name, its compose service, its metrics label and its ledger rows; Kubernetes objects use it as is (no stage name
holds `_`). Adding a stage is one row here and one package under `services/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.config import Settings
from shared.states import JobStatus, Tier


class Stage(StrEnum):
    INGEST = "ingest"
    SMALL = "small"
    GATE = "gate"
    LARGE = "large"


@dataclass(frozen=True)
class StageSpec:
    stage: Stage
    status: (
        JobStatus  # what a job holds while this stage owns it; a delivery that finds another is a duplicate
    )
    then: Stage | None  # where a job goes on (the gate chooses between this and ending the job)
    tier: (
        Tier | None
    )  # a model stage's tier: it micro-batches (celery-batches) in one solo process holding the model
    reads: str  # for people: what it reads and writes (the README's stage table, `recap stages`)
    writes: str

    @property
    def batched(self) -> bool:
        return self.tier is not None

    @property
    def task(self) -> str:
        return f"{self.stage}.run"

    @property
    def worker_module(self) -> str:
        """What `celery -A` loads: the stage's task wrappers (and nothing of any other stage)."""
        return f"services.{self.stage}.tasks"

    def concurrency(self, settings: Settings) -> int:
        """Processes per worker; a model stage's one process holds one model (and one CUDA context)."""
        if self.batched:
            return 1
        return {Stage.INGEST: settings.ingest_concurrency, Stage.GATE: settings.gate_concurrency}[self.stage]

    def batch_size(self, settings: Settings) -> int:
        """Jobs gathered per task call: a model stage's tier's batch size (RECAP_SMALL/LARGE_BATCH_SIZE)."""
        return settings.fields_of(self.tier).batch_size if self.tier else 1


STAGES: dict[Stage, StageSpec] = {
    spec.stage: spec
    for spec in (
        StageSpec(
            Stage.INGEST,
            JobStatus.INGESTING,
            Stage.SMALL,
            tier=None,
            reads="raw transcript",
            writes="turns, source format",
        ),
        StageSpec(
            Stage.SMALL,
            JobStatus.SUMMARIZING,
            Stage.GATE,
            tier=Tier.SMALL,
            reads="turns",
            writes="small summary with its gate scores",
        ),
        StageSpec(
            Stage.GATE,
            JobStatus.GATING,
            Stage.LARGE,
            tier=None,
            reads="small summary's scores, recent decisions, budgets",
            writes="gate decision, budget reservation; the job's end unless escalated",
        ),
        StageSpec(
            Stage.LARGE,
            JobStatus.ESCALATED,
            None,
            tier=Tier.LARGE,
            reads="turns",
            writes="large summary, settled budget; the job's end",
        ),
    )
}
FIRST = Stage.INGEST

# Celery routes by task name: each stage's task goes to the stage's own queue.
ROUTES: dict[str, dict[str, str]] = {spec.task: {"queue": str(stage)} for stage, spec in STAGES.items()}


# A stage's tier in reports and metrics: the model stages' own, "cpu" for the others.
TIER_OF_STAGE: dict[str, str] = {str(stage): str(spec.tier or "cpu") for stage, spec in STAGES.items()}

# After the pipeline: a job that ended with a webhook_url is announced by the notify worker (services/notify) on
# its own queue. Not a stage: it owns no job status and never moves a job.
NOTIFY = "notify"
NOTIFY_TASK = f"{NOTIFY}.run"
ROUTES[NOTIFY_TASK] = {"queue": NOTIFY}
QUEUES: list[str] = [*map(str, STAGES), NOTIFY]  # every queue a worker consumes

# The processes beside the workers, one name each in `recap`, compose, k8s and the stack's logs: the sweeper
# (services/sweeper: outbox relay, stalls, retention) and the exporter (services/exporter: Prometheus metrics).
SWEEPER = "sweeper"
EXPORTER = "exporter"

# The stage that owns a job in each non-terminal status (a queued job waits for the first stage's claim).
STAGE_OF_STATUS: dict[JobStatus, Stage] = {spec.status: stage for stage, spec in STAGES.items()} | {
    JobStatus.QUEUED: FIRST
}


def next_status(stage: Stage) -> JobStatus:
    """The status a job moves to when `stage` hands it on."""
    then = STAGES[stage].then
    if then is None:
        raise ValueError(f"the {stage} stage is the last; it ends jobs")
    return STAGES[then].status
