"""The large-model stage as a plain function: summarize the escalated job, record the cost, finish it."""

from __future__ import annotations

import uuid

from shared.config import get_settings
from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.db.session import session_scope
from shared.inference.textmodel import cached_model, summarize_turns
from shared.stages import Stage, claim, finish, job_errors, load_turns


def summarize_large_job(job_id: uuid.UUID) -> None:
    """Runs the large model on an escalated job and ends it `done` with the large summary."""
    settings = get_settings()
    with job_errors(job_id):
        if claim(job_id, Stage.LARGE) is None:
            return
        turns = load_turns(job_id)
        model = cached_model(settings.large_model, settings.device, settings.torch_threads)
        done = summarize_turns(
            model,
            turns,
            max_input_tokens=settings.large_max_input_tokens,
            max_new_tokens=settings.large_max_new_tokens,
            min_new_tokens=settings.min_new_tokens,
        )
        gen = done.generation
        with session_scope() as session:
            repo.save_summary(
                session, job_id=job_id, tier="large", model=settings.large_model, text=gen.text, scores=None
            )
            finish(
                session,
                job_id=job_id,
                stage=Stage.LARGE,
                usage=done.usage,
                to=JobStatus.DONE,
                summary=gen.text,
                tier="large",
            )
