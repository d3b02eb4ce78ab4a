"""The lifecycle of a micro-batch of jobs: claim each, run the work on them together, save each on its own.

Every job keeps its own fate: a duplicate is skipped, a job with bad state ends with its code, a lost database
sends that job back to the queue, and a batch the work cannot run is retried one job at a time, so one poison
job never takes its batch-mates down with it.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared import deadline
from shared.config import get_settings
from shared.db import calls
from shared.db.session import session_scope
from shared.errors import JobError, stage_timeout
from shared.lifecycle import Claimed, Load, Moved, StageOutcome, claim, end_job, job_errors, park
from shared.schemas import Usage
from shared.stages import Stage

log = logging.getLogger(__name__)

In = TypeVar("In")  # what a job's claim loaded
Out = TypeVar("Out")  # what the work made of it


@dataclass(frozen=True)
class BatchStage(Generic[In, Out]):
    """A batched stage's parts: what to load per job, the work over a batch, and how to save one result (in the
    given transaction; what it did with the job); for a stage that slices long jobs, what a result
    that is only a slice spent (None: it is the whole result)."""

    stage: Stage
    load: Load[In]
    work: Callable[[Sequence[In]], Sequence[Out]]
    save: Callable[[Session, Claimed[In], Out], Moved]
    sliced: Callable[[Out], Usage | None] = lambda _: None


def run_batch(spec: BatchStage[In, Out], job_ids: Sequence[uuid.UUID]) -> StageOutcome:
    outcome = StageOutcome()
    claimed: list[Claimed[In]] = []
    for job_id in dict.fromkeys(job_ids):  # the same job twice in one batch is one job
        try:
            with job_errors(job_id, outcome):
                if (one := claim(job_id, spec.stage, spec.load)) is not None:
                    claimed.append(one)
        except OperationalError:
            outcome.retry.append(job_id)
    if claimed:
        _work(spec, claimed, outcome)
    return outcome


def _bounded_work(spec: BatchStage[In, Out], claimed: list[Claimed[In]]) -> Sequence[Out]:
    """The work under the stage's time limit: the backends stop at the deadline (`stage_timeout`); a call that
    never comes back to check it has its jobs ended and its process stopped (the supervisor restarts it)."""
    settings = get_settings()
    limit = settings.stage_time_limit_s
    watchdog = threading.Timer(
        limit + settings.stage_kill_grace_s, _hung, ([c.job_id for c in claimed], limit)
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        with deadline.bounded(limit):
            return spec.work([c.loaded for c in claimed])
    finally:
        watchdog.cancel()


def _hung(job_ids: list[uuid.UUID], limit: float) -> None:
    log.critical("a batch of %d ignored its deadline; ending its jobs and this process", len(job_ids))
    try:
        for job_id in job_ids:
            end_job(job_id, stage_timeout(limit))
    finally:
        os._exit(75)


def _work(spec: BatchStage[In, Out], claimed: list[Claimed[In]], outcome: StageOutcome) -> None:
    try:
        done = _bounded_work(spec, claimed)
    except JobError as error:  # the work cannot run at all (a model that fails to load): every job says so
        for one in claimed:
            if end_job(one.job_id, error):
                outcome.announce.append(one.job_id)
        return
    except Exception:  # one poison job can sink a batch: find it by running each alone
        if len(claimed) == 1:
            with job_errors(claimed[0].job_id, outcome):
                raise
            return
        log.exception("batch of %d failed; retrying its jobs one at a time", len(claimed))
        for one in claimed:
            _work(spec, [one], outcome)
        return
    for one, result in zip(claimed, done, strict=True):
        _save(spec, one, result, outcome)


def _save(spec: BatchStage[In, Out], claimed: Claimed[In], result: Out, outcome: StageOutcome) -> None:
    """One job's result in its own transaction: a slice parked, or the whole result saved by the stage."""
    try:
        with job_errors(claimed.job_id, outcome), session_scope() as session:
            if (spent := spec.sliced(result)) is not None:
                park(session, claimed, spent)
                outcome.again.append(claimed.job_id)
            else:  # its earlier slices' calls (summaries of its text) go with the result's transaction
                calls.forget(session, job_id=claimed.job_id)
                outcome.add(claimed.job_id, spec.save(session, claimed, result))
    except OperationalError:
        outcome.retry.append(claimed.job_id)
