"""The small-model stage over a micro-batch: summarize (chunked when long), score the generation, hand to the gate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial

from sqlmodel import Session

from inference.longform import LongSummary, summary_fields
from inference.scores import Generated, aggregate
from inference.summarizers import slice_spent, summarize, summarizer
from shared.batches import BatchStage, run_batch
from shared.config import get_settings
from shared.db import repository as repo
from shared.lifecycle import Claimed, Moved, Sliced, StageOutcome, advance, sliced_loader
from shared.stages import Stage
from shared.states import Tier


def gate_scores(done: LongSummary) -> dict[str, float]:
    """What the gate sees: every score of the generation, and how the transcript was read."""
    generated = Generated(done.stats, done.transcript_tokens, done.truncation_ratio)
    return aggregate(generated, margin_cut=get_settings().gate_margin_cut) | {
        "chunks": done.chunks,
        "calls": done.calls,
    }


def _save(session: Session, claimed: Claimed[Sliced], done: LongSummary) -> Moved:
    model = summarizer(Tier.SMALL).model
    scores = gate_scores(done)
    repo.save_summary(
        session,
        job_id=claimed.job_id,
        tier=Tier.SMALL,
        model=model.name,
        scores=scores,
        **summary_fields(done),
    )
    return advance(session, claimed, done.usage(model))


STAGE = BatchStage(
    Stage.SMALL,
    sliced_loader(Stage.SMALL),
    partial(summarize, Tier.SMALL, scores=True),
    _save,
    sliced=partial(slice_spent, Tier.SMALL),
)


def summarize_jobs(job_ids: Sequence[uuid.UUID]) -> StageOutcome:
    """Runs the small model on a batch of jobs; `forward` lists those the gate should now decide."""
    return run_batch(STAGE, job_ids)


def summarize_job(job_id: uuid.UUID) -> StageOutcome:
    """One job alone, its slices back to back (what the worker interleaves with other jobs)."""
    while (outcome := summarize_jobs([job_id])).again:
        pass
    return outcome
