"""/v1/usage: what a tenant's jobs cost, and what the gate saved.

No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.deps import Context, Tenant
from services.api.problems import Problem, responses
from services.api.schemas import UsageReport
from shared.db import reports
from shared.db.session import session_scope

router = APIRouter(tags=["usage"])


@router.get("/v1/usage", response_model=UsageReport, responses=responses(401, 422, 429, 503))
def usage(
    ctx: Context,
    tenant: Tenant,
    start: Annotated[datetime | None, Query(alias="from", description="default: 30 days ago")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
) -> UsageReport:
    """Jobs created in [from, to): by status, tokens and USD by tier, escalation rate, and what the gate saved
    against sending every job to the large model."""
    end = _aware(end) if end else datetime.now(UTC)
    start = _aware(start) if start else end - timedelta(days=30)
    if start >= end:
        raise Problem(422, "invalid_request", "`from` must be before `to`")
    with session_scope(ctx.settings.database_url) as session:
        report = reports.usage(session, ctx.settings, tenant=tenant, start=start, end=end)
    return UsageReport.model_validate({"tenant": tenant, "from": start, "to": end, **report})


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
