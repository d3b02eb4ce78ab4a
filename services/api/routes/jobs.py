"""/v1/jobs: submit a transcript, read a job, list the tenant's jobs, erase one.

No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime."""

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.api.deps import ApiContext, Context, Tenant, own_view
from services.api.problems import Problem, responses
from services.api.schemas import MULTIPART_SCHEMA, JobPage, JobRequest
from services.api.submission import submission
from shared import intake
from shared.db import reports, retention, views
from shared.db.session import session_scope
from shared.schemas import JobView
from shared.states import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

BODIES = {
    "application/json": {"schema": JobRequest.model_json_schema()},
    "multipart/form-data": {"schema": MULTIPART_SCHEMA},
}


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    responses=responses(401, 409, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": {"required": True, "content": BODIES}},
    summary="Submit a transcript",
)
async def create_job(
    request: Request,
    response: Response,
    ctx: Context,
    tenant: Tenant,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JobView:
    """202 with the job (`queued`); it goes on asynchronously. A transcript that cannot be summarized still makes
    a job, which ends `rejected` with its code."""
    sub = await submission(request, ctx.settings, tenant, idempotency_key)
    view, created = await run_in_threadpool(accept, ctx, sub)
    response.headers["Location"] = f"/v1/jobs/{view.job_id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return view


def accept(ctx: ApiContext, sub: intake.Submission) -> tuple[JobView, bool]:
    """The submission stored and queued, within the tenant's in-flight limit; whether it made a new job."""
    ctx.in_flight.admit(sub.tenant)
    try:
        accepted = intake.submit(ctx.celery, ctx.settings, sub)
    except intake.IdempotencyConflict as exc:
        raise Problem(409, "idempotency_conflict", str(exc)) from exc
    if accepted.created:
        ctx.in_flight.accepted(sub.tenant)
    return accepted.view or own_view(ctx, sub.tenant, accepted.job_id), accepted.created


@router.get("/{job_id}", response_model=JobView, responses=responses(401, 404, 422, 429, 503))
def get_job(job_id: uuid.UUID, ctx: Context, tenant: Tenant) -> JobView:
    """The job: status, summary, tier, gate decision, cost ledger, webhook deliveries."""
    return own_view(ctx, tenant, job_id)


@router.get("", response_model=JobPage, responses=responses(401, 422, 429, 503))
def list_jobs(
    ctx: Context,
    tenant: Tenant,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, description="at most RECAP_API_PAGE_MAX (200 unless set)")] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """The tenant's jobs, newest first."""
    if limit > ctx.settings.api_page_max:
        raise Problem(
            422, "invalid_request", f"limit is over {ctx.settings.api_page_max} (RECAP_API_PAGE_MAX)"
        )
    after = _position(cursor) if cursor else None
    with session_scope(ctx.settings.database_url) as session:
        ids, position = reports.page(session, tenant=tenant, limit=limit, status=status, after=after)
        page = views.job_views(session, job_ids=ids)
    return JobPage(data=page, next_cursor=_cursor(position) if position else None)


@router.delete("/{job_id}", response_model=JobView, responses=responses(401, 404, 409, 422, 429, 503))
def delete_job(job_id: uuid.UUID, ctx: Context, tenant: Tenant) -> JobView:
    """Erases the job's transcript and summaries (its costs stay); 409 while the job is still running."""
    own_view(ctx, tenant, job_id)
    with session_scope(ctx.settings.database_url) as session:
        erased = retention.erase(session, job_ids=[job_id])
    if not erased:
        raise Problem(409, "job_not_ended", "the job is still running; delete it once it has ended")
    return own_view(ctx, tenant, job_id)


def _cursor(position: tuple[datetime, uuid.UUID]) -> str:
    return base64.urlsafe_b64encode(f"{position[0].isoformat()}|{position[1]}".encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, job_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        return datetime.fromisoformat(at), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(
            422, "invalid_cursor", "cursor is not one this API returned; start without it"
        ) from None
