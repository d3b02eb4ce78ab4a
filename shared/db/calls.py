"""A long job's finished model calls in one stage, kept in the database between the stage's slices: what
inference/slices.py's Memo asks for, and their deletion once the stage is done with them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from shared.db.models import ModelCall, RunOutcome, StageRun, utcnow
from shared.db.repository import insert_statement
from shared.db.session import session_scope


class StoredCalls:
    """The job's calls as they were when its stage claimed it, and each new one written as it finishes (its own
    transaction: a visit cut off keeps what it finished)."""

    def __init__(
        self, job_id: uuid.UUID, stage: str, found: dict[str, dict[str, Any]], *, deferred: bool = False
    ) -> None:
        self.job_id, self.stage, self.found = job_id, stage, found
        # A job that has made calls before may wait for the new jobs of its batch, once in a row (never starved).
        self.deferrable = bool(found) and not deferred

    def get(self, key: str) -> dict[str, Any] | None:
        return self.found.get(key)

    def put(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        with session_scope() as session:
            for key, generation in calls:
                row = {
                    "job_id": self.job_id,
                    "stage": self.stage,
                    "key": key,
                    "generation": generation,
                    "created_at": utcnow(),
                }
                stmt = insert_statement(session, ModelCall, row).on_conflict_do_nothing()
                session.connection().execute(stmt)  # the same prompt twice in a job is one call
        self.found.update(calls)


def stored(session: Session, *, job_id: uuid.UUID, stage: str) -> StoredCalls:
    rows = session.exec(select(ModelCall).where(ModelCall.job_id == job_id, ModelCall.stage == stage)).all()
    last = session.exec(
        select(StageRun)
        .where(StageRun.job_id == job_id, StageRun.stage == stage, col(StageRun.finished_at).is_not(None))
        .order_by(col(StageRun.attempt).desc())
        .limit(1)
    ).first()
    deferred = last is not None and last.outcome == RunOutcome.YIELDED and last.input_tokens == 0
    return StoredCalls(job_id, stage, {row.key: row.generation for row in rows}, deferred=deferred)


def forget(session: Session, *, job_id: uuid.UUID) -> None:
    """Deletes the job's kept calls (its stage saved its result, or the job ended): summaries of its text."""
    session.connection().execute(delete(ModelCall).where(col(ModelCall.job_id) == job_id))
