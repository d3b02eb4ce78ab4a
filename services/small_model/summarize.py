"""The small-model stage as a plain function: summarize, score per-token margins, record the cost."""

from __future__ import annotations

import uuid

from shared.config import get_settings
from shared.db import repository as repo
from shared.db.models import JobStatus
from shared.db.session import session_scope
from shared.inference.textmodel import cached_model, summarize_turns
from shared.scores import aggregate
from shared.stages import Stage, claim, finish, job_errors, load_turns


def summarize_job(job_id: uuid.UUID) -> bool:
    """Runs the small model on a job; True when the gate stage should be enqueued."""
    settings = get_settings()
    with job_errors(job_id):
        if claim(job_id, Stage.SMALL) is None:
            return False
        turns = load_turns(job_id)
        model = cached_model(settings.small_model, settings.device, settings.torch_threads)
        done = summarize_turns(
            model,
            turns,
            max_input_tokens=settings.small_max_input_tokens,
            max_new_tokens=settings.small_max_new_tokens,
            min_new_tokens=settings.min_new_tokens,
            scores=True,
        )
        gen = done.generation
        scores = aggregate(gen.margins) | {
            "output_tokens": gen.output_tokens,
            "truncation_ratio": done.fitted.truncation_ratio,
        }
        with session_scope() as session:
            repo.save_summary(
                session, job_id=job_id, tier="small", model=settings.small_model, text=gen.text, scores=scores
            )
            return finish(session, job_id=job_id, stage=Stage.SMALL, usage=done.usage, to=JobStatus.GATING)
    return False
