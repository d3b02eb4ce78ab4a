"""Errors as RFC 9457 problem details (`application/problem+json`), carrying the same codes as jobs and the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"


class ProblemBody(BaseModel):
    """What every error answers (RFC 9457); `code` is stable, `detail` says what to do."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None  # 422: the fields at fault


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = ProblemBody(
        type=f"urn:recap:problem:{code}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


# The statuses a route may answer besides its success, for the OpenAPI document.
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"description": TITLES[s], "content": {MEDIA_TYPE: {"schema": ProblemBody.model_json_schema()}}}
        for s in statuses
    }


async def _problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(exc.status, exc.code, exc.detail, instance=request.url.path, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    detail = f"the request is malformed: {where}"
    return problem_response(422, "invalid_request", detail, instance=request.url.path, errors=errors)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    return problem_response(
        exc.status_code, code, str(exc.detail), instance=request.url.path, headers=headers
    )


async def _database(request: Request, _exc: OperationalError) -> JSONResponse:
    detail = "the database cannot be reached; retry with backoff (an Idempotency-Key makes that safe)"
    return problem_response(
        503, "unavailable", detail, instance=request.url.path, headers={"Retry-After": "5"}
    )


async def _bug(request: Request, _exc: Exception) -> JSONResponse:
    # Starlette raises the exception again after this answer: uvicorn logs it with its traceback.
    return problem_response(
        500, "internal_error", "an internal error; it was logged", instance=request.url.path
    )


HANDLERS: dict[type[Exception], Any] = {
    Problem: _problem,
    RequestValidationError: _invalid,
    StarletteHTTPException: _http,
    OperationalError: _database,
    Exception: _bug,
}


def install(api: FastAPI) -> None:
    """Every error the API can answer, as a problem: ours, FastAPI's validation, Starlette's 404/405, a lost
    database (503), a bug (500, without its details)."""
    for kind, handler in HANDLERS.items():
        api.add_exception_handler(kind, handler)
