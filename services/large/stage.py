"""The large-model stage over a micro-batch: summarize escalated jobs (whole if they fit, else chunked), end them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial

from sqlmodel import Session

from inference.longform import LongSummary, summary_fields
from inference.summarizers import slice_spent, summarize, summarizer
from shared.batches import BatchStage, run_batch
from shared.db import budget, ledger
from shared.db import repository as repo
from shared.lifecycle import Claimed, Moved, Sliced, StageOutcome, complete, sliced_loader
from shared.stages import Stage
from shared.states import Tier


def _save(session: Session, claimed: Claimed[Sliced], done: LongSummary) -> Moved:
    model = summarizer(Tier.LARGE).model
    job_id = claimed.job_id
    repo.save_summary(
        session, job_id=job_id, tier=Tier.LARGE, model=model.name, scores=None, **summary_fields(done)
    )
    moved = complete(session, claimed, done.usage(model), done.text, Tier.LARGE)
    # The reservation becomes what every large attempt cost, the lost ones too.
    budget.settle(session, job_id=job_id, cost=ledger.stage_total(session, job_id=job_id, stage=Stage.LARGE))
    return moved


STAGE = BatchStage(
    Stage.LARGE,
    sliced_loader(Stage.LARGE),
    partial(summarize, Tier.LARGE, scores=False),
    _save,
    sliced=partial(slice_spent, Tier.LARGE),
)


def summarize_large_jobs(job_ids: Sequence[uuid.UUID]) -> StageOutcome:
    return run_batch(STAGE, job_ids)


def summarize_large_job(job_id: uuid.UUID) -> StageOutcome:
    """One job alone, its slices back to back."""
    while (outcome := summarize_large_jobs([job_id])).again:
        pass
    return outcome
