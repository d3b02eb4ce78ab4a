"""The small-model stage as a plain function over a micro-batch: summarize (chunked when long), score, record."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from shared.config import get_settings
from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.inference.batch_stage import BatchOutcome, run_batch
from shared.inference.longform import LongSummary, Summarizer, summary_fields
from shared.scores import Generated, aggregate
from shared.stages import Stage, finish


def gate_scores(done: LongSummary) -> dict[str, float]:
    """What the gate sees: every score of the generation, and how the transcript was read."""
    generated = Generated(done.stats, done.transcript_tokens, done.truncation_ratio)
    return aggregate(generated, margin_cut=get_settings().gate_margin_cut) | {
        "chunks": done.chunks,
        "calls": done.calls,
    }


def _save(session: Session, job_id: uuid.UUID, done: LongSummary, small: Summarizer) -> bool:
    repo.save_summary(
        session,
        job_id=job_id,
        tier="small",
        model=small.model.name,
        scores=gate_scores(done),
        **summary_fields(done),
    )
    return finish(
        session, job_id=job_id, stage=Stage.SMALL, usage=done.usage(small.model), to=JobStatus.GATING
    )


def summarize_jobs(job_ids: list[uuid.UUID]) -> BatchOutcome:
    """Runs the small model on a batch of jobs; `forward` lists those the gate should now decide."""
    return run_batch(job_ids, stage=Stage.SMALL, tier="small", save=_save, scores=True)


def summarize_job(job_id: uuid.UUID) -> bool:
    """One job alone; True when the gate stage should be enqueued."""
    return job_id in summarize_jobs([job_id]).forward
