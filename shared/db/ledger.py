"""The cost ledger: one StageRun row per attempt of a stage, opened by its claim and closed with its usage, priced
(or closed `interrupted`, `failed`, `superseded`). Keyword-only functions over a caller's session; they never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, insert, or_, update
from sqlmodel import Session, col, select

from shared.costs import Price, stage_cost
from shared.db.models import RunOutcome, StageRun, as_utc, utcnow
from shared.db.repository import changed
from shared.schemas import Usage


def open_attempt(
    session: Session, *, job_id: uuid.UUID, stage: str, since: datetime | None
) -> tuple[int, int]:
    """Opens a new ledger row for this delivery of the stage: (its attempt number, the stage's deliveries since
    the job was last queued, this one included). A row still open belonged to a process that died or hung:
    it is closed `interrupted` with the seconds it is known to have had."""
    rows = (
        session.connection()
        .execute(select(StageRun).where(col(StageRun.job_id) == job_id, col(StageRun.stage) == stage))
        .all()
    )
    now = utcnow()
    for row in rows:
        if row.finished_at is None:
            close_run(session, run_id=row.id, started_at=row.started_at, outcome=RunOutcome.INTERRUPTED)
    since = since and as_utc(since)
    # A slice that yielded is progress, not a failed delivery: only the others count against the limit.
    counted = [row for row in rows if row.outcome != RunOutcome.YIELDED]
    deliveries = 1 + sum(1 for row in counted if since is None or as_utc(row.started_at) >= since)
    attempt = 1 + max((row.attempt for row in rows), default=0)
    session.connection().execute(
        insert(StageRun),
        [{"job_id": job_id, "stage": stage, "attempt": attempt, "deliveries": deliveries, "started_at": now}],
    )
    return attempt, deliveries


def close_run(session: Session, *, run_id: int, started_at: datetime, outcome: RunOutcome) -> None:
    """Closes an attempt that recorded no usage: its wall seconds so far, no tokens (unknown)."""
    seconds = max(0.0, (utcnow() - as_utc(started_at)).total_seconds())
    session.connection().execute(
        update(StageRun)
        .where(col(StageRun.id) == run_id, col(StageRun.finished_at).is_(None))
        .values(outcome=outcome, seconds=seconds, finished_at=utcnow())
    )


def close_open_runs(session: Session, *, job_id: uuid.UUID, outcome: RunOutcome) -> None:
    rows = (
        session.connection()
        .execute(
            select(StageRun.id, StageRun.started_at).where(
                col(StageRun.job_id) == job_id, col(StageRun.finished_at).is_(None)
            )
        )
        .all()
    )
    for row in rows:
        close_run(session, run_id=row.id, started_at=row.started_at, outcome=outcome)


def _priced(usage: Usage, price: Price, price_version: str) -> dict[str, object]:
    """A ledger row's usage and the unit prices it was priced at."""
    return {
        "model": usage.model,
        "device": usage.device,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "seconds": usage.seconds,
        "batch_size": usage.batch_size,
        "price_input_per_mtok": price.input_per_mtok,
        "price_output_per_mtok": price.output_per_mtok,
        "price_per_second": price.per_second,
        "price_version": price_version,
    }


def record_usage(
    session: Session,
    *,
    job_id: uuid.UUID,
    stage: str,
    attempt: int,
    usage: Usage,
    price: Price,
    price_version: str,
    outcome: RunOutcome,
) -> Decimal:
    """Closes the attempt's ledger row with its usage, cost and outcome; returns the cost in USD. A row a later
    delivery closed as interrupted (it took this process for dead) is recorded all the same: the work was done,
    and this may be the attempt that moves the job (then the later one is superseded)."""
    cost = stage_cost(
        price, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, seconds=usage.seconds
    )
    stmt = (
        update(StageRun)
        .where(
            col(StageRun.job_id) == job_id,
            col(StageRun.stage) == stage,
            col(StageRun.attempt) == attempt,
            or_(col(StageRun.finished_at).is_(None), col(StageRun.outcome) == RunOutcome.INTERRUPTED),
        )
        .values(outcome=outcome, cost_usd=cost, finished_at=utcnow(), **_priced(usage, price, price_version))
    )
    return cost if changed(session, stmt) == 1 else Decimal(0)


def supersede(session: Session, *, job_id: uuid.UUID, stage: str, attempt: int) -> None:
    """Marks an attempt whose result lost the race to a concurrent duplicate (its cost stays)."""
    session.connection().execute(
        update(StageRun)
        .where(col(StageRun.job_id) == job_id, col(StageRun.stage) == stage, col(StageRun.attempt) == attempt)
        .values(outcome=RunOutcome.SUPERSEDED)
    )


def job_cost(session: Session, *, job_id: uuid.UUID) -> Decimal:
    total = session.exec(select(func.sum(StageRun.cost_usd)).where(StageRun.job_id == job_id)).one()
    return Decimal(total or 0)


def stage_total(session: Session, *, job_id: uuid.UUID, stage: str) -> Decimal:
    """What every attempt of one stage of the job cost (the ledger's sum)."""
    total = session.exec(
        select(func.sum(StageRun.cost_usd)).where(StageRun.job_id == job_id, StageRun.stage == stage)
    ).one()
    return Decimal(total or 0)
