"""A POST /v1/jobs request read into an `intake.Submission`: a multipart transcript file or JSON turns, with every
field checked before anything is stored."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.bodies import check_depth, json_object, parse_json
from services.api.problems import Problem
from services.api.schemas import FORMATS, MAX_NAME, JobRequest
from shared import intake
from shared.config import Settings
from shared.errors import InputError
from shared.prompts import SummaryLength
from shared.webhooks import check_url

Upload = tuple[bytes, str | None, str | None]  # the transcript's bytes, its name, its format if given


async def submission(request: Request, settings: Settings, tenant: str, key: str | None) -> intake.Submission:
    """The request as a submission of `tenant`'s, or a Problem that says what is wrong with it."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        fields, (raw, name, fmt) = await _form(request, settings)
    elif kind == "application/json":
        fields = parse_json(await request.body(), "the body")
        check_depth(fields, "the body", settings.api_max_json_depth)
    else:
        raise Problem(
            415,
            "unsupported_media_type",
            "send multipart/form-data (a transcript file) or application/json (turns)",
        )
    body = _validated(fields, settings)
    if kind == "application/json":
        raw, name, fmt = json.dumps({"turns": body.turns}).encode(), body.title, "json"
    if body.webhook_url is not None:
        await run_in_threadpool(_check_webhook, body.webhook_url, settings)
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


async def _form(request: Request, settings: Settings) -> tuple[dict[str, Any], Upload]:
    """A multipart form's fields (as JobRequest reads them) and its transcript file."""
    try:
        form = await request.form(max_files=1, max_fields=8)
    except StarletteHTTPException as exc:  # the form itself is broken (too many parts, bad framing)
        raise Problem(422, "invalid_request", f"the multipart form is malformed: {exc.detail}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Problem(422, "invalid_request", "a multipart request needs the transcript as its `file` part")
    if upload.filename is not None and len(upload.filename) > MAX_NAME:
        raise Problem(422, "invalid_request", f"the file's name is over {MAX_NAME} characters")
    fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "file"}
    fmt = fields.pop("format", None) or None
    if fmt is not None and fmt not in FORMATS:
        raise Problem(422, "invalid_request", f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    metadata = fields.get("metadata")
    fields["metadata"] = (
        json_object(metadata, "the `metadata` part", settings.api_max_json_depth) if metadata else None
    )
    fields.setdefault("length", SummaryLength.MEDIUM.value)
    fields["turns"] = []
    return fields, (await upload.read(), upload.filename, fmt)


def _validated(fields: dict[str, Any], settings: Settings) -> JobRequest:
    try:
        body = JobRequest.model_validate(fields)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise Problem(422, "invalid_request", f"the request is malformed: {where}") from None
    if body.metadata is not None and len(json.dumps(body.metadata)) > settings.api_max_metadata_bytes:
        raise Problem(
            422, "metadata_too_large", f"metadata is over {settings.api_max_metadata_bytes} bytes as JSON"
        )
    return body


def _check_webhook(url: str, settings: Settings) -> None:
    try:
        check_url(url, allow_private=settings.webhook_allow_private)
    except InputError as exc:
        raise Problem(422, exc.code, exc.message) from None
