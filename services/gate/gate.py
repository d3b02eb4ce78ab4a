"""The gate stage as a plain function: score the small summary, apply the policy and the budget guard, record."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

from sqlmodel import Session, col, select

from services.gate.policy import Outcome, Route, decide, online_level, rate_for_budget, threshold_for_rate
from shared.config import GatePolicy, Settings, get_settings
from shared.db import budget
from shared.db import repository as repo
from shared.db.models import GateDecision, Job, JobStatus, utcnow
from shared.db.session import session_scope
from shared.errors import JobError
from shared.schemas import Usage
from shared.stages import Stage, claim, finish, job_errors

MODEL = "margin-gate"


def target_rate(settings: Settings) -> float:
    """The share of jobs to escalate: what the per-job budget buys, when one is set, else the target rate."""
    if settings.gate_budget_per_job_usd is not None:
        return rate_for_budget(
            settings.gate_budget_per_job_usd, settings.gate_small_cost_usd, settings.gate_large_cost_usd
        )
    return settings.gate_target_rate


def _online(session: Session, settings: Settings, scores: dict[str, float]) -> Outcome:
    """The running quantile of recent scores, at the level that steers the realized rate to the target."""
    name, target = settings.gate_score, target_rate(settings)
    recent = session.exec(
        select(GateDecision.score, GateDecision.decision)
        .where(GateDecision.policy == GatePolicy.ONLINE, GateDecision.score_name == name)
        .order_by(col(GateDecision.created_at).desc())
        .limit(settings.gate_online_window)
    ).all()
    if len(recent) < settings.gate_warmup_jobs:
        threshold = settings.gate_threshold
        note = f" (warm-up {len(recent) + 1}/{settings.gate_warmup_jobs} on the fixed threshold)"
    else:
        wanted = sum(1 for _, decision in recent if decision != Route.ACCEPT)
        level = online_level(target, len(recent), wanted, settings.gate_online_correction_jobs)
        values = [score for score, _ in recent] + [float(scores.get(name, 0.0))]
        threshold = threshold_for_rate(name, values, level)
        note = f" (running quantile: the riskiest {level:.1%} of {len(values)} recent scores; {wanted} escalated)"
    return decide(
        scores, score_name=name, threshold=threshold, policy="online", target_rate=target, note=note
    )


def _policy(session: Session, settings: Settings, scores: dict[str, float]) -> Outcome:
    if settings.gate_policy is GatePolicy.ONLINE:
        return _online(session, settings, scores)
    rate = None if settings.gate_policy is GatePolicy.THRESHOLD else target_rate(settings)
    return decide(
        scores,
        score_name=settings.gate_score,
        threshold=settings.gate_threshold,
        policy=settings.gate_policy,
        target_rate=rate,
    )


def _guard(
    session: Session, settings: Settings, job: Job, outcome: Outcome
) -> tuple[Outcome, JobError | None]:
    """Reserves an escalation's expected cost in the global and tenant budgets, or degrades the job."""
    period = budget.period_start(utcnow(), settings.budget_period)
    tenant_limit = settings.tenant_budgets_usd.get(job.tenant, settings.tenant_budget_usd)
    refusal = budget.reserve(
        session,
        job_id=job.id,
        tenant=job.tenant,
        period=period,
        amount=settings.gate_large_cost_usd,
        limits={budget.GLOBAL: settings.budget_usd, budget.tenant_scope(job.tenant): tenant_limit},
    )
    if refusal is None:
        return outcome, None
    whose = "the global" if refusal.scope == budget.GLOBAL else f"tenant {job.tenant!r}'s"
    why = (
        f"{whose} large-model budget for the {settings.budget_period} from {period:%Y-%m-%d %H:%M} UTC "
        f"(USD {refusal.limit}) cannot pay for another escalation (USD {refusal.spent} spent or reserved); "
        "the small model's summary was kept"
    )
    code = "global_budget_spent" if refusal.scope == budget.GLOBAL else "tenant_budget_spent"
    degraded = replace(outcome, route=Route.DEGRADED, reason=f"{outcome.reason}; {why}")
    return degraded, JobError(code, why)


def gate_job(job_id: uuid.UUID) -> bool:
    """Decides a job; True when the large-model stage should be enqueued."""
    settings = get_settings()
    with job_errors(job_id):
        job = claim(job_id, Stage.GATE)
        if job is None:
            return False
        started = time.perf_counter()
        with session_scope() as session:
            small = repo.get_summary(session, job_id=job_id, tier="small")
            if small is None or small.scores is None:
                raise JobError(
                    "small_summary_missing", f"job {job_id} reached the gate without a small summary"
                )
            outcome = _policy(session, settings, small.scores)
            if not small.text.strip() and outcome.route is Route.ACCEPT:
                # Whatever its scores say, a model that wrote nothing was not sure of anything.
                outcome = replace(
                    outcome,
                    route=Route.ESCALATE,
                    reason=f"empty small summary, escalated as maximally unsure; {outcome.reason}",
                )
            degraded: JobError | None = None
            if outcome.route is Route.ESCALATE:
                outcome, degraded = _guard(session, settings, job, outcome)
            repo.save_decision(
                session,
                decision=GateDecision(
                    job_id=job_id,
                    score_name=outcome.score_name,
                    score=outcome.score,
                    threshold=outcome.threshold,
                    policy=outcome.policy,
                    target_rate=outcome.target_rate,
                    decision=outcome.route,
                    reason=outcome.reason,
                    scores=small.scores,
                ),
            )
            usage = Usage(model=MODEL, device="cpu", seconds=time.perf_counter() - started)
            if outcome.route is Route.ESCALATE:
                return finish(session, job_id=job_id, stage=Stage.GATE, usage=usage, to=JobStatus.ESCALATED)
            extra = {"error_code": degraded.code, "error_message": degraded.message} if degraded else {}
            finish(
                session,
                job_id=job_id,
                stage=Stage.GATE,
                usage=usage,
                to=JobStatus.DEGRADED if degraded else JobStatus.DONE,
                summary=small.text,
                tier="small",
                **extra,
            )
    return False
