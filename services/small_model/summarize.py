"""The small-model stage as a plain function: summarize (chunked when long), score margins, record the cost."""

from __future__ import annotations

import uuid

from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.db.session import session_scope
from shared.inference.longform import LongSummary, summary_fields
from shared.inference.summarizers import summarizer
from shared.prompts import SummaryLength
from shared.scores import aggregate
from shared.stages import Stage, claim, finish, job_errors, load_turns


def gate_scores(done: LongSummary) -> dict[str, float]:
    """What the gate sees: margins over every call, and how much of the transcript was read."""
    return aggregate(done.margins) | {
        "output_tokens": done.output_tokens,
        "truncation_ratio": done.truncation_ratio,
        "chunks": done.chunks,
        "calls": done.calls,
    }


def summarize_job(job_id: uuid.UUID) -> bool:
    """Runs the small model on a job; True when the gate stage should be enqueued."""
    with job_errors(job_id):
        job = claim(job_id, Stage.SMALL)
        if job is None:
            return False
        small = summarizer("small")
        [done] = small.summarize([(load_turns(job_id), SummaryLength(job.summary_length))], scores=True)
        with session_scope() as session:
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
    return False
