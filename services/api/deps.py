"""What the routes depend on, declared once: the process's `ApiContext` (settings, Celery, limits), the caller's
tenant from its API key, and a job the tenant owns.

No `from __future__ import annotations`: FastAPI reads these signatures at runtime."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.limits import InFlight, KeyCache, RateLimit
from services.api.problems import Problem
from shared import liveness, tenants
from shared.celery_app import create_app
from shared.config import Settings
from shared.db import reports, views
from shared.db.session import session_scope
from shared.schemas import JobView


@dataclass(frozen=True)
class ApiContext:
    """One per process, on `app.state.context`: what every route shares."""

    settings: Settings
    celery: Celery
    rate: RateLimit
    bad_keys: RateLimit
    keys: KeyCache
    in_flight: InFlight


def build_context(settings: Settings) -> ApiContext:
    celery = create_app(settings)
    # No "task-sent" event: it is a second Redis message per job, and Flower follows the workers' own events.
    celery.conf.task_send_sent_event = False
    broker = liveness.client(settings)
    limits = settings.api_rate_limit, settings.api_rate_window_s
    rate = RateLimit(broker, *limits, kind="rate", setting="RECAP_API_RATE_LIMIT")
    bad_key_limits = settings.api_bad_key_limit, settings.api_bad_key_window_s
    bad_keys = RateLimit(broker, *bad_key_limits, kind="bad-key", setting="RECAP_API_BAD_KEY_LIMIT")

    def count_in_flight(tenant: str) -> int:
        with session_scope(settings.database_url) as session:
            return reports.in_flight(session, tenant=tenant)

    in_flight = InFlight(broker, settings.api_max_in_flight, tenants.INFLIGHT_TTL_S, count_in_flight)
    return ApiContext(settings, celery, rate, bad_keys, KeyCache(settings.api_auth_cache_s), in_flight)


def context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(context)]
bearer = HTTPBearer(auto_error=False, description="A tenant's API key (`recap tenants create`)")


def tenant_of(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The caller's tenant, from `Authorization: Bearer <key>`; 401 without a live key; 429 past its rate, or past
    RECAP_API_BAD_KEY_LIMIT keys that were not live from the caller's address (then no lookup at all)."""
    key = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    tenant = (ctx.keys.get(key) or _look_up(request, ctx, key)) if key else None
    if tenant is None:
        raise Problem(
            401,
            "unauthorized",
            "send a live API key as `Authorization: Bearer <key>` (`recap tenants create` makes one)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ctx.rate.check(tenant)
    return tenant


def _look_up(request: Request, ctx: Context, key: str) -> str | None:
    """A key not in the cache: counted against the caller's address when it is not live (a request without a key
    costs nothing and is not counted)."""
    address = request.client.host if request.client else "unknown"
    ctx.bad_keys.refuse_spent(address)
    with session_scope(ctx.settings.database_url) as session:
        tenant = tenants.authenticate(session, key)
    if tenant is None:
        ctx.bad_keys.check(address)
    else:
        ctx.keys.put(key, tenant)
    return tenant


Tenant = Annotated[str, Depends(tenant_of)]


def own_view(ctx: ApiContext, tenant: str, job_id: uuid.UUID) -> JobView:
    """The job if it is the tenant's; any other job, or none, is 404 alike (ids are not probed)."""
    with session_scope(ctx.settings.database_url) as session:
        view = views.job_view(session, job_id=job_id)
    if view is None or view.tenant != tenant:
        raise Problem(404, "job_not_found", f"no job {job_id} for this API key")
    return view
