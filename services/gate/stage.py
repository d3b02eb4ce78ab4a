"""The gate stage as a plain function: apply the policy to the small summary's scores, guard the budgets, record."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlmodel import Session, col, select

from services.gate.policies import Outcome, Recent, policy
from shared import tenants
from shared.config import Settings, get_settings
from shared.db import budget
from shared.db import repository as repo
from shared.db.models import GateDecision, utcnow
from shared.db.session import session_scope
from shared.errors import JobError
from shared.lifecycle import Claimed, Moved, StageOutcome, advance, claim, complete, job_errors
from shared.schemas import Usage
from shared.stages import Stage
from shared.states import Decision, Tier

MODEL = "margin-gate"


@dataclass(frozen=True)
class _Small:
    """What the gate reads in its claim: the job's tenant and the small model's summary and scores."""

    tenant: str
    text: str
    scores: dict[str, float]


def _load(session: Session, job: repo.JobRow) -> _Small:
    small = repo.get_summary(session, job_id=job.id, tier=Tier.SMALL)
    if small is None or small.scores is None:
        raise JobError("small_summary_missing", f"job {job.id} reached the gate without a small summary")
    return _Small(job.tenant, small.text, small.scores)


def _recent(session: Session, settings: Settings) -> Recent:
    def read() -> list[tuple[float, Decision]]:
        rows = session.exec(
            select(GateDecision.score, GateDecision.decision)
            .where(
                GateDecision.policy == settings.gate_policy, GateDecision.score_name == settings.gate_score
            )
            .order_by(col(GateDecision.created_at).desc())
            .limit(settings.gate_online_window)
        ).all()
        return [(score, Decision(decision)) for score, decision in rows]

    return read


def _tenant_limit(session: Session, settings: Settings, tenant: str) -> Decimal | None:
    """The tenant's budget: its own (`recap tenants create --budget`), else RECAP_TENANT_BUDGETS_USD's entry,
    else RECAP_TENANT_BUDGET_USD."""
    own = tenants.budget_of(session, tenant)
    return own if own is not None else settings.tenant_budgets_usd.get(tenant, settings.tenant_budget_usd)


def _guard(
    session: Session, settings: Settings, job_id: uuid.UUID, tenant: str, outcome: Outcome
) -> tuple[Outcome, JobError | None]:
    """Reserves an escalation's expected cost in the global and tenant budgets, or degrades the job."""
    period = budget.period_start(utcnow(), settings.budget_period)
    refusal = budget.reserve(
        session,
        job_id=job_id,
        tenant=tenant,
        period=period,
        amount=settings.gate_large_cost_usd,
        limits={
            budget.GLOBAL: settings.budget_usd,
            budget.tenant_scope(tenant): _tenant_limit(session, settings, tenant),
        },
    )
    if refusal is None:
        return outcome, None
    whose = "the global" if refusal.scope == budget.GLOBAL else f"tenant {tenant!r}'s"
    why = (
        f"{whose} large-model budget for the {settings.budget_period} from {period:%Y-%m-%d %H:%M} UTC "
        f"(USD {refusal.limit}) cannot pay for another escalation (USD {refusal.spent} spent or reserved); "
        "the small model's summary was kept"
    )
    code = "global_budget_spent" if refusal.scope == budget.GLOBAL else "tenant_budget_spent"
    degraded = replace(outcome, route=Decision.DEGRADED, reason=f"{outcome.reason}; {why}")
    return degraded, JobError(code, why)


def _decide(
    session: Session, settings: Settings, job_id: uuid.UUID, small: _Small
) -> tuple[Outcome, JobError | None]:
    outcome = policy(settings).decide(small.scores, settings, _recent(session, settings))
    if not small.text.strip() and outcome.route is Decision.ACCEPT:
        # Whatever its scores say, a model that wrote nothing was not sure of anything.
        reason = f"empty small summary, escalated as maximally unsure; {outcome.reason}"
        outcome = replace(outcome, route=Decision.ESCALATE, reason=reason)
    if outcome.route is Decision.ESCALATE:
        return _guard(session, settings, job_id, small.tenant, outcome)
    return outcome, None


def _record(session: Session, job_id: uuid.UUID, outcome: Outcome, scores: dict[str, float]) -> None:
    decision = GateDecision(
        job_id=job_id,
        score_name=outcome.score_name,
        score=outcome.score,
        threshold=outcome.threshold,
        policy=outcome.policy,
        target_rate=outcome.target_rate,
        decision=outcome.route,
        reason=outcome.reason,
        scores=scores,
    )
    repo.save_decision(session, decision=decision)


def gate_job(job_id: uuid.UUID) -> StageOutcome:
    """Decides a job: on to the large-model stage, or ended with the small summary."""
    outcome = StageOutcome()
    with job_errors(job_id, outcome):
        if (small := claim(job_id, Stage.GATE, _load)) is not None:
            outcome.add(job_id, _gate(small))
    return outcome


def _gate(small: Claimed[_Small]) -> Moved:
    settings, job_id, started = get_settings(), small.job_id, time.perf_counter()
    with session_scope() as session:
        outcome, degraded = _decide(session, settings, job_id, small.loaded)
        _record(session, job_id, outcome, small.loaded.scores)
        usage = Usage(model=MODEL, device="cpu", seconds=time.perf_counter() - started)
        if outcome.route is Decision.ESCALATE:
            return advance(session, small, usage)
        return complete(session, small, usage, small.loaded.text, Tier.SMALL, degraded)
