"""The API's routes (`recap api`; `create_api` is uvicorn's factory). Thin: each route authenticates, checks its
limits, and calls the same functions as the CLI (shared/intake.py, shared/db).

No `from __future__ import annotations` here: FastAPI reads the routes' annotations at runtime, and the tenant
dependency is a local name."""

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import text
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.bodies import check_depth, json_object, parse_json
from services.api.limits import BodyLimit, InFlight, KeyCache, RateLimit
from services.api.problems import Problem, install, problem_response, responses
from shared import intake, liveness, tenants
from shared.celery_app import create_app
from shared.config import Settings, get_settings
from shared.db import reports, views
from shared.db import repository as repo
from shared.db.session import session_scope
from shared.errors import InputError
from shared.prompts import SummaryLength
from shared.schemas import JobView
from shared.states import JobStatus
from shared.webhooks import check_url

FORM_SLACK = 64 * 1024  # a multipart body's boundaries and small fields, above the transcript itself


MAX_NAME = 512  # a job's source name (a title or a file's name): the column's width


class JobRequest(BaseModel):
    """A transcript as JSON: its turns, as `recap submit` reads a .json file."""

    turns: list[dict[str, Any]] = Field(
        description='Turns in order: {"speaker": str | null, "text": str, "start": s | null, "end": s | null}'
    )
    title: str | None = Field(None, max_length=MAX_NAME, description="Shown as the job's source")
    length: SummaryLength = SummaryLength.MEDIUM
    webhook_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] | None = None


class JobPage(BaseModel):
    data: list[JobView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one")


class TierUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: float


class UsageReport(BaseModel):
    tenant: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    jobs: int
    by_status: dict[str, int]
    tiers: dict[str, TierUsage] = Field(description="small, large, and cpu (ingestion and the gate)")
    cost_usd: float
    gated: int
    escalated: int
    escalation_rate: float | None
    always_large_usd: float = Field(description="What sending every job to the large model would have cost")
    cost_avoided_usd: float = Field(description="always_large_usd minus cost_usd: what the gate saved")
    always_large_estimate: str

    model_config = {"populate_by_name": True}


MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "a .vtt, .srt, .txt or .json transcript",
        },
        "format": {"type": "string", "enum": ["vtt", "srt", "txt", "json"], "description": "else detected"},
        "length": {"type": "string", "enum": [s.value for s in SummaryLength]},
        "webhook_url": {"type": "string", "maxLength": 2048},
        "metadata": {"type": "string", "description": "a JSON object, returned with the job"},
    },
}


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


def create_api(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    celery = create_app(settings)
    # No "task-sent" event: it is a second Redis message per job, and Flower follows the workers' own events.
    celery.conf.task_send_sent_event = False
    redis_client = liveness.client(settings)
    rate = RateLimit(
        redis_client,
        settings.api_rate_limit,
        settings.api_rate_window_s,
        kind="rate",
        setting="RECAP_API_RATE_LIMIT",
    )
    bad_keys = RateLimit(
        redis_client,
        settings.api_bad_key_limit,
        settings.api_bad_key_window_s,
        kind="bad-key",
        setting="RECAP_API_BAD_KEY_LIMIT",
    )
    bearer = HTTPBearer(auto_error=False, description="A tenant's API key (`recap tenants create`)")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Threads for the sync work (database, broker): as many as the connection pool holds. More only queue
        # for a connection, contending for the GIL meanwhile: at 50 concurrent clients, two processes served
        # 229 requests/s (p99 647 ms) with anyio's default 40 threads, 348 (p99 304 ms) with 10.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        yield

    api = FastAPIOffline(  # /docs and /redoc from the installed package's files: they render offline
        lifespan=lifespan,
        title="Recap",
        version="1",
        summary="Asynchronous meeting summaries: a small model for most meetings, a large one when it is unsure",
        description="Submit a transcript, get a job id; poll it or receive a signed webhook when it ends.",
    )
    api.add_middleware(BodyLimit, limit=settings.max_transcript_bytes + FORM_SLACK)
    install(api)

    keys = KeyCache(settings.api_auth_cache_s)

    def tenant_of(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> str:
        """The caller's tenant, from `Authorization: Bearer <key>`; 401 without a live key; 429 past its rate, or
        past RECAP_API_BAD_KEY_LIMIT keys that were not live from the caller's address (then no lookup at all)."""
        key = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
        tenant = keys.get(key) if key else None
        if key and tenant is None:  # a request without a key costs nothing and is not counted
            address = request.client.host if request.client else "unknown"
            bad_keys.refuse_spent(address)
            with session_scope(settings.database_url) as session:
                tenant = tenants.authenticate(session, key)
            if tenant is None:
                bad_keys.check(address)
            else:
                keys.put(key, tenant)
        if tenant is None:
            raise Problem(
                401,
                "unauthorized",
                "send a live API key as `Authorization: Bearer <key>` (`recap tenants create` makes one)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        rate.check(tenant)
        return tenant

    Tenant = Annotated[str, Depends(tenant_of)]

    def own_view(tenant: str, job_id: uuid.UUID) -> JobView:
        """The job if it is the tenant's; any other job, or none, is 404 alike (ids are not probed)."""
        with session_scope(settings.database_url) as session:
            view = views.job_view(session, job_id=job_id)
        if view is None or view.tenant != tenant:
            raise Problem(404, "job_not_found", f"no job {job_id} for this API key")
        return view

    def count_in_flight(tenant: str) -> int:
        with session_scope(settings.database_url) as session:
            return reports.in_flight(session, tenant=tenant)

    in_flight = InFlight(rate.client, settings.api_max_in_flight, tenants.INFLIGHT_TTL_S, count_in_flight)

    def accept(tenant: str, sub: intake.Submission) -> tuple[JobView, bool]:
        in_flight.admit(tenant)
        try:
            accepted = intake.submit(celery, settings, sub)
        except intake.IdempotencyConflict as exc:
            raise Problem(409, "idempotency_conflict", str(exc)) from exc
        if accepted.created:
            in_flight.accepted(tenant)
        return accepted.view or own_view(tenant, accepted.job_id), accepted.created

    async def submission(request: Request, tenant: str, key: str | None) -> intake.Submission:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fields: dict[str, Any]
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=8)
            except StarletteHTTPException as exc:  # the form itself is broken (too many parts, bad framing)
                raise Problem(
                    422, "invalid_request", f"the multipart form is malformed: {exc.detail}"
                ) from None
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Problem(
                    422, "invalid_request", "a multipart request needs the transcript as its `file` part"
                )
            raw, name = await upload.read(), upload.filename
            if name is not None and len(name) > MAX_NAME:
                raise Problem(422, "invalid_request", f"the file's name is over {MAX_NAME} characters")
            fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "file"}
            fmt = fields.pop("format", None) or None
            if fmt is not None and fmt not in MULTIPART_SCHEMA["properties"]["format"]["enum"]:
                raise Problem(422, "invalid_request", f"format {fmt!r} is not one of vtt, srt, txt, json")
            metadata = fields.get("metadata")
            fields["metadata"] = (
                json_object(metadata, "the `metadata` part", settings.api_max_json_depth)
                if metadata
                else None
            )
            fields.setdefault("length", SummaryLength.MEDIUM.value)
            fields["turns"] = []
        elif kind == "application/json":
            fields = parse_json(await request.body(), "the body")
            check_depth(fields, "the body", settings.api_max_json_depth)
        else:
            raise Problem(
                415,
                "unsupported_media_type",
                "send multipart/form-data (a transcript file) or application/json (turns)",
            )
        try:
            body = JobRequest.model_validate(fields)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise Problem(422, "invalid_request", f"the request is malformed: {where}") from None
        if kind == "application/json":
            raw, name, fmt = json.dumps({"turns": body.turns}).encode(), body.title, "json"
        if body.metadata is not None and len(json.dumps(body.metadata)) > settings.api_max_metadata_bytes:
            raise Problem(
                422, "metadata_too_large", f"metadata is over {settings.api_max_metadata_bytes} bytes as JSON"
            )
        if body.webhook_url is not None:
            try:
                await run_in_threadpool(
                    check_url, body.webhook_url, allow_private=settings.webhook_allow_private
                )
            except InputError as exc:
                raise Problem(422, exc.code, exc.message) from None
        return intake.Submission(
            raw=raw,
            tenant=tenant,
            source_name=name,
            length=body.length,
            format=fmt,
            webhook_url=body.webhook_url,
            meta=body.metadata,
            idempotency_key=key,
        )

    @api.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobView,
        responses=responses(401, 409, 413, 415, 422, 429, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": JobRequest.model_json_schema()},
                    "multipart/form-data": {"schema": MULTIPART_SCHEMA},
                },
            }
        },
        summary="Submit a transcript",
    )
    async def create_job(
        request: Request,
        response: Response,
        tenant: Tenant,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JobView:
        """202 with the job (`queued`); it goes on asynchronously. A transcript that cannot be summarized still
        makes a job, which ends `rejected` with its code."""
        sub = await submission(request, tenant, idempotency_key)
        view, created = await run_in_threadpool(accept, tenant, sub)
        response.headers["Location"] = f"/v1/jobs/{view.job_id}"
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return view

    @api.get("/v1/jobs/{job_id}", response_model=JobView, responses=responses(401, 404, 422, 429, 503))
    def get_job(job_id: uuid.UUID, tenant: Tenant) -> JobView:
        """The job: status, summary, tier, gate decision, cost ledger, webhook deliveries."""
        return own_view(tenant, job_id)

    @api.get("/v1/jobs", response_model=JobPage, responses=responses(401, 422, 429, 503))
    def list_jobs(
        tenant: Tenant,
        status: JobStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=settings.api_page_max)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JobPage:
        """The tenant's jobs, newest first."""
        after = _position(cursor) if cursor else None
        with session_scope(settings.database_url) as session:
            ids, position = reports.page(session, tenant=tenant, limit=limit, status=status, after=after)
            page = views.job_views(session, job_ids=ids)
        return JobPage(data=page, next_cursor=_cursor(position) if position else None)

    @api.delete(
        "/v1/jobs/{job_id}", response_model=JobView, responses=responses(401, 404, 409, 422, 429, 503)
    )
    def delete_job(job_id: uuid.UUID, tenant: Tenant) -> JobView:
        """Erases the job's transcript and summaries (its costs stay); 409 while the job is still running."""
        own_view(tenant, job_id)
        with session_scope(settings.database_url) as session:
            erased = repo.erase(session, job_ids=[job_id])
        if not erased:
            raise Problem(409, "job_not_ended", "the job is still running; delete it once it has ended")
        return own_view(tenant, job_id)

    @api.get("/v1/usage", response_model=UsageReport, responses=responses(401, 422, 429, 503))
    def usage(
        tenant: Tenant,
        start: Annotated[datetime | None, Query(alias="from", description="default: 30 days ago")] = None,
        end: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
    ) -> UsageReport:
        """Jobs created in [from, to): by status, tokens and USD by tier, escalation rate, and what the gate
        saved against sending every job to the large model."""
        end = _aware(end) if end else datetime.now(UTC)
        start = _aware(start) if start else end - timedelta(days=30)
        if start >= end:
            raise Problem(422, "invalid_request", "`from` must be before `to`")
        with session_scope(settings.database_url) as session:
            report = reports.usage(session, settings, tenant=tenant, start=start, end=end)
        return UsageReport.model_validate({"tenant": tenant, "from": start, "to": end, **report})

    @api.get("/healthz", responses=responses(503))
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @api.get("/readyz", responses=responses(503))
    def readyz() -> Any:
        """The database and Redis are reachable."""
        down = []
        try:
            with session_scope(settings.database_url) as session:
                session.connection().execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001  (any failure means not ready)
            down.append("database")
        try:
            rate.client.ping()
        except Exception:  # noqa: BLE001
            down.append("redis")
        if down:
            return problem_response(503, "not_ready", f"cannot reach: {', '.join(down)}", instance="/readyz")
        return {"status": "ready"}

    return api


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
