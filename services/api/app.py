"""The API's app factory (`recap api`; `create_api` is uvicorn's factory): it assembles the routers of
services/api/routes over one ApiContext. Routes are thin: each authenticates, checks its limits, and calls the
same functions as the CLI (shared/intake.py, shared/db)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.api.deps import build_context
from services.api.limits import BodyLimit
from services.api.problems import install
from services.api.routes import health, jobs, usage
from shared.config import Settings, get_settings

FORM_SLACK = 64 * 1024  # a multipart body's boundaries and small fields, above the transcript itself


def create_api(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

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
    api.state.context = build_context(settings)
    api.add_middleware(BodyLimit, limit=settings.max_transcript_bytes + FORM_SLACK)
    install(api)
    for router in (jobs.router, usage.router, health.router):
        api.include_router(router)
    return api
