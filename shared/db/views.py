"""Jobs as users see them (`JobView`): status, summary, tier, cost, error, gate decision, per-stage ledger and
webhook deliveries. A page of jobs is read in a fixed number of queries (one per table), whatever its size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import TypeVar

from sqlmodel import Session, col, select

from shared.db.models import GateDecision, Job, StageRun, Summary, Tier, WebhookAttempt, WebhookState
from shared.schemas import (
    DeliveryView,
    ErrorInfo,
    GateView,
    JobView,
    StageView,
    SummaryView,
    WebhookView,
)

Row = TypeVar("Row", StageRun, Summary, WebhookAttempt)


def _by_job(
    session: Session, table: type[Row], job_ids: Sequence[uuid.UUID], order: str
) -> dict[uuid.UUID, list[Row]]:
    rows = session.exec(
        select(table).where(col(table.job_id).in_(job_ids)).order_by(col(getattr(table, order)))
    ).all()
    grouped: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.job_id].append(row)
    return grouped


def job_views(session: Session, *, job_ids: Sequence[uuid.UUID]) -> list[JobView]:
    """The jobs that exist among `job_ids`, in that order: five queries for any number of jobs."""
    jobs = {j.id: j for j in session.exec(select(Job).where(col(Job.id).in_(job_ids))).all()}
    runs = _by_job(session, StageRun, job_ids, "id")
    summaries = _by_job(session, Summary, job_ids, "tier")
    attempts = _by_job(session, WebhookAttempt, job_ids, "attempt")
    decisions = {
        d.job_id: d
        for d in session.exec(select(GateDecision).where(col(GateDecision.job_id).in_(job_ids))).all()
    }
    return [
        _view(jobs[i], runs[i], summaries[i], decisions.get(i), attempts[i]) for i in job_ids if i in jobs
    ]


def job_view(session: Session, *, job_id: uuid.UUID) -> JobView | None:
    views = job_views(session, job_ids=[job_id])
    return views[0] if views else None


def new_job_view(job: Job) -> JobView:
    """A job just created, as users see it, from its row alone (nothing ran yet: no queries)."""
    return _view(job, [], [], None, [])


def _view(
    job: Job,
    runs: Sequence[StageRun],
    summaries: Sequence[Summary],
    decision: GateDecision | None,
    attempts: Sequence[WebhookAttempt],
) -> JobView:
    ordered = sorted(summaries, key=lambda s: s.tier != Tier.SMALL)
    by_tier = {s.tier: s for s in ordered}
    shown = by_tier.get(job.tier or Tier.SMALL) or by_tier.get(Tier.SMALL)
    return JobView.model_validate(job, from_attributes=True).model_copy(
        update={
            "chunks": shown.chunks if shown else None,
            "truncation_ratio": shown.truncation_ratio if shown else None,
            "cost_usd": float(sum((r.cost_usd for r in runs), Decimal(0))),
            "error": ErrorInfo(code=job.error_code, message=job.error_message or "")
            if job.error_code
            else None,
            "gate": GateView.model_validate(decision, from_attributes=True) if decision else None,
            "summaries": [SummaryView.model_validate(s, from_attributes=True) for s in ordered],
            "stages": [StageView.model_validate(r, from_attributes=True) for r in runs],
            "webhook": _webhook(job, attempts),
        }
    )


def _webhook(job: Job, attempts: Sequence[WebhookAttempt]) -> WebhookView | None:
    if job.webhook_url is None:
        return None
    return WebhookView(
        url=job.webhook_url,
        state=job.webhook_state or WebhookState.PENDING,
        attempts=[DeliveryView.model_validate(a, from_attributes=True) for a in attempts],
    )
