"""Structured logs: one JSON object per line, each with the job it is about (`job_id`, null when none).

The job comes from the context a stage sets while it works on a job, or, for Celery's own task lines
("received", "succeeded"), from the task's kwargs: every task carries exactly one `job_id`.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

current_job: ContextVar[str | None] = ContextVar("current_job", default=None)
_KWARGS_JOB = re.compile(r"['\"]job_id['\"]: ['\"]([0-9a-f-]{36})['\"]")


@contextmanager
def job_context(job_id: uuid.UUID | str) -> Iterator[None]:
    """Every log line written inside carries this job id."""
    token = current_job.set(str(job_id))
    try:
        yield
    finally:
        current_job.reset(token)


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            job = current_job.get()
            data = getattr(record, "data", None)
            if job is None and isinstance(data, dict):  # Celery's task lines pass their context as `data`
                found = _KWARGS_JOB.search(str(data.get("kwargs", "")))
                job = found.group(1) if found else None
            record.job_id = job
        return True


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "text":
        return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(job_id)s]: %(message)s")
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s %(job_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "processName": "process"},
        timestamp=False,
    )


def configure(level: str | int, fmt: str, stream: TextIO | None = None) -> None:
    """Replaces the root logger's handlers with one that writes `fmt` (json | text) to `stream` (stderr)."""
    logging.captureWarnings(True)  # warnings become log lines too, in the same format
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter(fmt))
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request's URL whole at INFO: a webhook URL may carry credentials or a token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
