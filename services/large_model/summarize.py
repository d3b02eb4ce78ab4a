"""The large-model stage as a plain function over a micro-batch: summarize escalated jobs, record, finish them."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.inference.batch_stage import BatchOutcome, run_batch
from shared.inference.longform import LongSummary, Summarizer, summary_fields
from shared.stages import Stage, finish


def _save(session: Session, job_id: uuid.UUID, done: LongSummary, large: Summarizer) -> bool:
    repo.save_summary(
        session, job_id=job_id, tier="large", model=large.model.name, scores=None, **summary_fields(done)
    )
    finish(
        session,
        job_id=job_id,
        stage=Stage.LARGE,
        usage=done.usage(large.model),
        to=JobStatus.DONE,
        summary=done.text,
        tier="large",
    )
    return False  # the last stage: nothing to send on


def summarize_large_jobs(job_ids: list[uuid.UUID]) -> BatchOutcome:
    """Runs the large model on escalated jobs (whole if a transcript fits its window, else chunked)."""
    return run_batch(job_ids, stage=Stage.LARGE, tier="large", save=_save, scores=False)


def summarize_large_job(job_id: uuid.UUID) -> None:
    summarize_large_jobs([job_id])
