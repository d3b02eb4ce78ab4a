"""A model stage over a micro-batch of jobs: claim each, summarize them together, save each on its own.

Every job keeps its own fate: a duplicate is skipped, a job with bad state ends with its code, a lost database
sends that job back to the queue, and a batch the model cannot run is retried one job at a time, so one poison
job never takes its batch-mates down with it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared.config import Tier
from shared.db.session import session_scope
from shared.errors import JobError
from shared.inference.longform import LongSummary, Summarizer
from shared.inference.summarizers import summarizer
from shared.prompts import SummaryLength
from shared.stages import Stage, claim, end_job, job_errors, load_turns

log = logging.getLogger(__name__)

# Saves one job's summary and moves it on, in the given transaction; True when the next stage should be sent.
Save = Callable[[Session, uuid.UUID, LongSummary, Summarizer], bool]


@dataclass
class BatchOutcome:
    forward: list[uuid.UUID] = field(default_factory=list)  # send to the next stage
    retry: list[uuid.UUID] = field(default_factory=list)  # the database was unreachable: send again later


@dataclass
class _Claimed:
    job_id: uuid.UUID
    turns: list[tuple[str | None, str]]
    length: SummaryLength


def run_batch(
    job_ids: list[uuid.UUID], *, stage: Stage, tier: Tier, save: Save, scores: bool
) -> BatchOutcome:
    outcome = BatchOutcome()
    claimed: list[_Claimed] = []
    for job_id in dict.fromkeys(job_ids):  # the same job twice in one batch is one job
        try:
            with job_errors(job_id):
                job = claim(job_id, stage)
                if job is not None:
                    claimed.append(_Claimed(job_id, load_turns(job_id), SummaryLength(job.summary_length)))
        except OperationalError:
            outcome.retry.append(job_id)
    if claimed:
        _summarize(claimed, tier=tier, save=save, scores=scores, outcome=outcome)
    return outcome


def _summarize(
    claimed: list[_Claimed], *, tier: Tier, save: Save, scores: bool, outcome: BatchOutcome
) -> None:
    try:
        model = summarizer(tier)
        done = model.summarize([(c.turns, c.length) for c in claimed], scores=scores)
    except JobError as error:  # the model cannot be had (load failure): every job of the batch says so
        for c in claimed:
            end_job(c.job_id, error)
        return
    except Exception:
        if len(claimed) == 1:
            with job_errors(claimed[0].job_id):
                raise
            return
        log.exception("batch of %d failed; retrying its jobs one at a time", len(claimed))
        for c in claimed:
            _summarize([c], tier=tier, save=save, scores=scores, outcome=outcome)
        return
    for c, result in zip(claimed, done, strict=True):
        try:
            with job_errors(c.job_id), session_scope() as session:
                if save(session, c.job_id, result, model):
                    outcome.forward.append(c.job_id)
        except OperationalError:
            outcome.retry.append(c.job_id)
