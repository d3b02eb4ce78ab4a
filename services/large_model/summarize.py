"""The large-model stage as a plain function: summarize the escalated job, record the cost, finish it."""

from __future__ import annotations

import uuid

from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.db.session import session_scope
from shared.inference.longform import summary_fields
from shared.inference.summarizers import summarizer
from shared.prompts import SummaryLength
from shared.stages import Stage, claim, finish, job_errors, load_turns


def summarize_large_job(job_id: uuid.UUID) -> None:
    """Runs the large model on an escalated job (whole if it fits its window, else chunked); ends it `done`."""
    with job_errors(job_id):
        job = claim(job_id, Stage.LARGE)
        if job is None:
            return
        large = summarizer("large")
        [done] = large.summarize([(load_turns(job_id), SummaryLength(job.summary_length))])
        with session_scope() as session:
            repo.save_summary(
                session,
                job_id=job_id,
                tier="large",
                model=large.model.name,
                scores=None,
                **summary_fields(done),
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
