"""The large-model stage over a micro-batch: summarize escalated jobs (whole if they fit, else chunked), end them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial

from sqlmodel import Session

from inference.longform import LongSummary, summary_fields
from inference.summarizers import slice_spent, summarize, summarizer
from shared.batches import BatchOutcome, BatchStage, run_batch
from shared.db import repository as repo
from shared.lifecycle import complete, sliced_loader
from shared.stages import Stage
from shared.states import Tier


def _save(session: Session, job_id: uuid.UUID, done: LongSummary) -> bool:
    model = summarizer(Tier.LARGE).model
    repo.save_summary(
        session, job_id=job_id, tier=Tier.LARGE, model=model.name, scores=None, **summary_fields(done)
    )
    complete(
        session, job_id=job_id, stage=Stage.LARGE, usage=done.usage(model), summary=done.text, tier=Tier.LARGE
    )
    return False  # the last stage: nothing to send on


STAGE = BatchStage(
    Stage.LARGE,
    sliced_loader(Stage.LARGE),
    partial(summarize, Tier.LARGE, scores=False),
    _save,
    sliced=partial(slice_spent, Tier.LARGE),
)


def summarize_large_jobs(job_ids: Sequence[uuid.UUID]) -> BatchOutcome:
    return run_batch(STAGE, job_ids)


def summarize_large_job(job_id: uuid.UUID) -> None:
    """One job alone, its slices back to back."""
    while summarize_large_jobs([job_id]).again:
        pass
