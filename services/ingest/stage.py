"""The ingestion stage as a plain function: parse the raw transcript, store its turns, record the cost."""

from __future__ import annotations

import time
import uuid

from sqlmodel import Session

from services.ingest.parse import parse_as_configured
from shared.db import repository as repo
from shared.db.session import session_scope
from shared.lifecycle import StageOutcome, advance, claim, job_errors
from shared.schemas import Usage
from shared.stages import Stage

MODEL = "recap-parser"


def _raw(session: Session, job: repo.JobRow) -> tuple[bytes, str | None]:
    return repo.get_raw(session, job_id=job.id), job.requested_format


def ingest_job(job_id: uuid.UUID) -> StageOutcome:
    """Runs ingestion for a job: on to the small-model stage, or ended with the transcript's error."""
    outcome = StageOutcome()
    with job_errors(job_id, outcome):
        claimed = claim(job_id, Stage.INGEST, _raw)
        if claimed is None:
            return outcome
        raw, requested = claimed.loaded
        started = time.perf_counter()
        parsed = parse_as_configured(raw, format=requested)
        usage = Usage(model=MODEL, device="cpu", seconds=time.perf_counter() - started)
        turns = [{"speaker": t.speaker, "text": t.text, "start": t.start, "end": t.end} for t in parsed.turns]
        with session_scope() as session:
            repo.save_turns(session, job_id=job_id, turns=turns)
            outcome.add(job_id, advance(session, claimed, usage, source_format=parsed.format))
    return outcome
