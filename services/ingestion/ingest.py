"""The ingestion stage as a plain function: load the raw transcript, parse it, store turns, record the cost."""

from __future__ import annotations

import time
import uuid

from services.ingestion.parse import parse
from shared.config import get_settings
from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.db.session import session_scope
from shared.schemas import Usage
from shared.stages import Stage, claim, finish, job_errors

MODEL = "recap-parser"


def ingest_job(job_id: uuid.UUID) -> bool:
    """Runs ingestion for a job; True when the small-model stage should be enqueued."""
    settings = get_settings()
    with job_errors(job_id):
        job = claim(job_id, Stage.INGEST)
        if job is None:
            return False
        started = time.perf_counter()
        with session_scope() as session:
            raw = repo.get_transcript(session, job_id=job_id).raw
        parsed = parse(
            raw,
            max_bytes=settings.max_transcript_bytes,
            max_turns=settings.max_turns,
            format=job.requested_format,
            cleaning=settings.cleaning,
        )
        usage = Usage(model=MODEL, device="cpu", seconds=time.perf_counter() - started)
        with session_scope() as session:
            repo.save_turns(
                session,
                job_id=job_id,
                source_format=parsed.format,
                turns=[t.model_dump() for t in parsed.turns],
            )
            return finish(session, job_id=job_id, stage=Stage.INGEST, usage=usage, to=JobStatus.SUMMARIZING)
    return False
