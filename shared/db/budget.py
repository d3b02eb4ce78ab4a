"""The hard budget guard's ledger: large-model spend per scope and period, reserved before each escalation.

A reservation is one conditional UPDATE per scope (`spent + amount <= limit`). The row lock it takes makes
concurrent gates queue on it, and each re-checks the condition against the committed spend, so together
they can never reserve past a limit (Postgres re-evaluates the WHERE clause after the lock; SQLite has
one writer at a time).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, update
from sqlmodel import Session, col

from shared.db.models import BudgetReservation, BudgetSpend, table_of
from shared.db.repository import changed, insert_statement

GLOBAL = "global"


def tenant_scope(tenant: str) -> str:
    return f"tenant:{tenant}"


@dataclass(frozen=True)
class Refusal:
    """Why an escalation could not be paid for."""

    scope: str
    limit: Decimal
    spent: Decimal


def _add(session: Session, *, scope: str, period: datetime, amount: Decimal, limit: Decimal | None) -> bool:
    session.connection().execute(
        insert_statement(
            session, BudgetSpend, {"scope": scope, "period_start": period, "spent_usd": 0}
        ).on_conflict_do_nothing(index_elements=["scope", "period_start"])
    )
    spent = table_of(BudgetSpend).c.spent_usd
    stmt = (
        update(BudgetSpend)
        .where(col(BudgetSpend.scope) == scope, col(BudgetSpend.period_start) == period)
        .values(spent_usd=spent + amount)
    )
    if limit is not None:
        stmt = stmt.where(spent + amount <= limit)
    return changed(session, stmt) == 1


def spent(session: Session, *, scope: str, period: datetime) -> Decimal:
    row = session.get(BudgetSpend, (scope, period))
    return Decimal(row.spent_usd) if row else Decimal(0)


def reserve(
    session: Session,
    *,
    job_id: uuid.UUID,
    tenant: str,
    period: datetime,
    amount: Decimal,
    limits: dict[str, Decimal | None],
) -> Refusal | None:
    """Reserves `amount` in every scope of `limits` (None: no limit, spend still counted), or in none of them.

    Once per job: a duplicate delivery finds the job's row (its insert waits for the first one's commit) and
    reserves nothing more. A refusal is kept as a settled zero reservation, so a duplicate cannot retry it.
    """
    row = {"job_id": job_id, "tenant": tenant, "period_start": period, "amount_usd": amount, "settled": False}
    claimed = (
        session.connection()
        .execute(
            insert_statement(session, BudgetReservation, row)
            .on_conflict_do_nothing(index_elements=["job_id"])
            .returning(table_of(BudgetReservation).c.job_id)
        )
        .first()
    )
    if claimed is None:
        return None
    done: list[str] = []
    for scope, limit in limits.items():
        if not _add(session, scope=scope, period=period, amount=amount, limit=limit):
            assert limit is not None  # an unlimited scope always accepts
            _give_back(session, job_id, done, period, amount)
            return Refusal(scope, limit, spent(session, scope=scope, period=period))
        done.append(scope)
    return None


def _give_back(
    session: Session, job_id: uuid.UUID, scopes: list[str], period: datetime, amount: Decimal
) -> None:
    """A refused reservation: the scopes that had accepted it take the amount back (we hold these rows' locks:
    that is atomic for others), and the job's row is kept settled at zero."""
    for scope in scopes:
        _add(session, scope=scope, period=period, amount=-amount, limit=None)
    session.connection().execute(
        update(BudgetReservation)
        .where(col(BudgetReservation.job_id) == job_id)
        .values(amount_usd=0, settled=True)
    )


def settle(session: Session, *, job_id: uuid.UUID, cost: Decimal) -> None:
    """Makes a job's reservation its real cost (0 releases it): the open reservation is replaced, a settled one
    trued up (a lost duplicate's attempt priced after the winner settled); no-op without one."""
    reservation = session.get(BudgetReservation, job_id, with_for_update=True)
    if reservation is None or Decimal(reservation.amount_usd) == cost and reservation.settled:
        return
    delta = cost - Decimal(reservation.amount_usd)
    for scope in (GLOBAL, tenant_scope(reservation.tenant)):
        _add(session, scope=scope, period=reservation.period_start, amount=delta, limit=None)
    reservation.amount_usd, reservation.settled = cost, True
    session.add(reservation)


def forget_released(session: Session, *, job_id: uuid.UUID) -> None:
    """Drops a job's released reservation (settled, nothing spent) so that a retried gate reserves again."""
    session.connection().execute(
        delete(BudgetReservation).where(
            col(BudgetReservation.job_id) == job_id,
            col(BudgetReservation.settled).is_(True),
            col(BudgetReservation.amount_usd) == 0,
        )
    )


def period_start(now: datetime, period: str) -> datetime:
    """The start of the budget period holding `now` (UTC): its hour, day or month."""
    start = now.replace(minute=0, second=0, microsecond=0)
    if period in ("day", "month"):
        start = start.replace(hour=0)
    if period == "month":
        start = start.replace(day=1)
    return start
