"""The gate stage as a plain function: score the small summary, record the decision, finish or escalate."""

from __future__ import annotations

import time
import uuid

from services.gate.policy import Route, decide
from shared.config import get_settings
from shared.db import repository as repo
from shared.db.models import GateDecision, JobStatus
from shared.db.session import session_scope
from shared.errors import JobError
from shared.schemas import Usage
from shared.stages import Stage, claim, finish, job_errors

MODEL = "margin-gate"


def gate_job(job_id: uuid.UUID) -> bool:
    """Decides a job; True when the large-model stage should be enqueued."""
    settings = get_settings()
    with job_errors(job_id):
        if claim(job_id, Stage.GATE) is None:
            return False
        started = time.perf_counter()
        with session_scope() as session:
            small = repo.get_summary(session, job_id=job_id, tier="small")
            if small is None or small.scores is None:
                raise JobError(
                    "small_summary_missing", f"job {job_id} reached the gate without a small summary"
                )
            outcome = decide(small.scores, score_name=settings.gate_score, threshold=settings.gate_threshold)
            repo.save_decision(
                session,
                decision=GateDecision(
                    job_id=job_id,
                    score_name=outcome.score_name,
                    score=outcome.score,
                    threshold=outcome.threshold,
                    policy=outcome.policy,
                    decision=outcome.route,
                    reason=outcome.reason,
                    scores=small.scores,
                ),
            )
            usage = Usage(model=MODEL, device="cpu", seconds=time.perf_counter() - started)
            if outcome.route is Route.ESCALATE:
                return finish(session, job_id=job_id, stage=Stage.GATE, usage=usage, to=JobStatus.ESCALATED)
            finish(
                session,
                job_id=job_id,
                stage=Stage.GATE,
                usage=usage,
                to=JobStatus.DONE,
                summary=small.text,
                tier="small",
            )
    return False
