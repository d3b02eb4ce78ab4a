"""What the API reads across a tenant's jobs: a page of them, newest first, and their usage over a period."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shared.config import Settings
from shared.costs import StageSpend, always_large
from shared.db.models import TERMINAL, GateDecision, Job, StageRun, table_of
from shared.stages import TIER_OF_STAGE
from shared.states import Decision, JobStatus


def page(
    session: Session,
    *,
    tenant: str,
    limit: int,
    status: JobStatus | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> tuple[list[uuid.UUID], tuple[datetime, uuid.UUID] | None]:
    """Up to `limit` of the tenant's job ids, newest first, after the (created_at, id) position `after`;
    and the position to continue from (None: this was the last page). Keyset pagination: a page costs the same
    however deep it is, and jobs created meanwhile neither repeat nor skip."""
    stmt = (
        select(Job.id, Job.created_at)
        .where(Job.tenant == tenant)
        .order_by(col(Job.created_at).desc(), col(Job.id).desc())
        .limit(limit + 1)
    )
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if after is not None:
        at, last = after
        stmt = stmt.where(or_(col(Job.created_at) < at, and_(col(Job.created_at) == at, col(Job.id) < last)))
    rows = session.exec(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [r[0] for r in rows], ((rows[-1][1], rows[-1][0]) if more and rows else None)


UNFINISHED = [s for s in JobStatus if s not in TERMINAL]  # IN on the (tenant, status) index


def in_flight(session: Session, *, tenant: str) -> int:
    """The tenant's jobs that have not ended."""
    stmt = select(func.count()).where(Job.tenant == tenant, col(Job.status).in_(UNFINISHED))
    return session.exec(stmt).one()


def in_flight_by_tenant(session: Session) -> dict[str, int]:
    """Every tenant's jobs that have not ended (tenants with none are absent)."""
    stmt = select(Job.tenant, func.count()).where(col(Job.status).in_(UNFINISHED)).group_by(Job.tenant)
    return dict(session.exec(stmt).all())


def usage(
    session: Session, settings: Settings, *, tenant: str, start: datetime, end: datetime
) -> dict[str, object]:
    """The tenant's jobs created in [start, end): counts by status, tokens and USD by tier, the escalation rate,
    and the cost the gate avoided (what sending every job to the large model would have cost, minus the cost)."""
    window = (col(Job.tenant) == tenant, col(Job.created_at) >= start, col(Job.created_at) < end)
    by_status = dict(session.exec(select(Job.status, func.count()).where(*window).group_by(Job.status)).all())
    jobs = _spend(session, window)
    stmt = select(GateDecision.decision).join(Job, col(Job.id) == col(GateDecision.job_id)).where(*window)
    decisions = Counter(session.exec(stmt).all())
    cost = sum((s.cost_usd for job in jobs.values() for s in job.values()), Decimal(0))
    large, how = always_large(
        list(jobs.values()), settings.prices.get(settings.large_model), settings.gate_large_cost_usd
    )
    gated = sum(decisions.values())
    return {
        "jobs": sum(by_status.values()),
        "by_status": {str(k): v for k, v in by_status.items()},
        "tiers": _by_tier(jobs),
        "cost_usd": float(cost),
        "gated": gated,
        "escalated": decisions[Decision.ESCALATE],
        "escalation_rate": decisions[Decision.ESCALATE] / gated if gated else None,
        "always_large_usd": float(large),
        "cost_avoided_usd": float(large - cost) if jobs else 0.0,
        "always_large_estimate": how,
    }


def _spend(session: Session, window: tuple[Any, ...]) -> dict[uuid.UUID, dict[str, StageSpend]]:
    """Each job's tokens and cost per stage, summed over its attempts."""
    run = table_of(StageRun).c  # five columns: Core's select (SQLModel's types stop at four)
    stmt = (
        sa_select(
            run.job_id,
            run.stage,
            func.sum(run.input_tokens),
            func.sum(run.output_tokens),
            func.sum(run.cost_usd),
        )
        .join(table_of(Job), table_of(Job).c.id == run.job_id)
        .where(*window)
        .group_by(run.job_id, run.stage)
    )
    jobs: dict[uuid.UUID, dict[str, StageSpend]] = defaultdict(dict)
    for job_id, stage, tokens_in, tokens_out, cost in session.connection().execute(stmt).all():
        jobs[job_id][stage] = StageSpend(int(tokens_in or 0), int(tokens_out or 0), Decimal(cost or 0))
    return jobs


def _by_tier(jobs: dict[uuid.UUID, dict[str, StageSpend]]) -> dict[str, dict[str, float | int]]:
    """Tokens and USD per tier (small, large, and cpu: ingestion and the gate)."""
    tiers: dict[str, StageSpend] = {}
    for stages in jobs.values():
        for stage, spend in stages.items():
            name = TIER_OF_STAGE.get(stage, stage)
            was = tiers.get(name, StageSpend(0, 0, Decimal(0)))
            tiers[name] = StageSpend(
                was.input_tokens + spend.input_tokens,
                was.output_tokens + spend.output_tokens,
                was.cost_usd + spend.cost_usd,
            )
    return {
        name: {
            "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens,
            "cost_usd": float(t.cost_usd),
        }
        for name, t in sorted(tiers.items())
    }
