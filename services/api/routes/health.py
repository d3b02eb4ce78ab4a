"""/healthz (the process is up) and /readyz (its database and Redis answer): what load balancers and Kubernetes ask.

No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from services.api.deps import Context
from services.api.problems import problem_response, responses
from shared.db.session import session_scope

router = APIRouter(tags=["health"])


@router.get("/healthz", responses=responses(503))
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=responses(503))
def readyz(ctx: Context) -> Any:
    """The database and Redis are reachable."""
    down = []
    try:
        with session_scope(ctx.settings.database_url) as session:
            session.connection().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001  (any failure means not ready)
        down.append("database")
    try:
        ctx.rate.client.ping()
    except Exception:  # noqa: BLE001
        down.append("redis")
    if down:
        return problem_response(503, "not_ready", f"cannot reach: {', '.join(down)}", instance="/readyz")
    return {"status": "ready"}
