"""The large model's budgets through the stages, on SQLite and on the real PostgreSQL: reserved at escalation,
settled to what every large attempt cost, given back on failure, never reserved twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from services.gate.stage import gate_job
from services.ingest.stage import ingest_job
from services.large.stage import summarize_large_job
from services.small.stage import summarize_job
from shared.db.session import session_scope
from shared.lifecycle import claim
from shared.stages import Stage
from tests.factories import HELD, create_job, rows, view


def budget_rows(url, job_id):

    from shared.db.models import BudgetReservation, BudgetSpend

    with session_scope(url) as session:
        reservation = session.get(BudgetReservation, job_id)
        spend = {s.scope: Decimal(s.spent_usd) for s in session.exec(select(BudgetSpend)).all()}
        return (reservation.amount_usd, reservation.settled) if reservation else None, spend


def test_an_escalation_reserves_its_budget_and_settles_to_the_real_cost(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_BUDGET_USD="1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
    reservation, spend = budget_rows(pipeline, job_id)
    assert reservation == (Decimal("0.25"), False)
    assert spend == {"global": Decimal("0.25"), "tenant:t1": Decimal("0.25")}

    summarize_large_job(job_id)
    large_cost = Decimal(str(next(s.cost_usd for s in view(pipeline, job_id).stages if s.stage == "large")))
    reservation, spend = budget_rows(pipeline, job_id)
    assert 0 < large_cost < Decimal("0.25")
    assert reservation == (pytest.approx(large_cost), True)
    assert spend["global"] == spend["tenant:t1"] == pytest.approx(large_cost)


def test_an_escalation_that_fails_gives_its_reservation_back(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_TENANT_BUDGET_USD="1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
    configure(RECAP_LARGE_MODEL="/nonexistent/model")  # the large stage cannot run
    summarize_large_job(job_id)

    job = view(pipeline, job_id)
    assert (job.status, job.error.code) == ("failed", "model_unavailable")
    reservation, spend = budget_rows(pipeline, job_id)
    assert reservation == (Decimal(0), True) and spend == {"global": 0, "tenant:t1": 0}


def test_a_spent_budget_degrades_the_job_to_its_small_summary(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_TENANT_BUDGET_USD="0.1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward
    assert gate_job(job_id).forward == []  # nothing for the large model

    job = view(pipeline, job_id)
    assert (job.status, job.tier, job.error.code) == ("degraded", "small", "tenant_budget_spent")
    assert job.summary and "tenant 't1'" in job.error.message and "USD 0.1" in job.error.message
    assert job.gate.decision == "degraded" and "budget" in job.gate.reason
    assert budget_rows(pipeline, job_id) == ((0, True), {"global": 0, "tenant:t1": 0})  # refused, kept


def test_a_job_reserves_once_however_often_it_is_delivered(db_url) -> None:
    from datetime import UTC, datetime

    from shared.db import budget

    job_id, other, period = create_job(db_url), create_job(db_url), datetime(2026, 11, 21, tzinfo=UTC)
    limits = {"global": Decimal("1"), "tenant:t1": None}
    for _ in range(3):  # a duplicate delivery of the gate task reserves nothing more
        with session_scope(db_url) as session:
            refusal = budget.reserve(
                session, job_id=job_id, tenant="t1", period=period, amount=Decimal("0.4"), limits=limits
            )
        assert refusal is None
    with session_scope(db_url) as session:
        assert budget.spent(session, scope="global", period=period) == Decimal("0.4")
        # Another job no longer fits under the limit: refused with the scope, its limit and what is spent.
        refusal = budget.reserve(
            session, job_id=other, tenant="t1", period=period, amount=Decimal("0.7"), limits=limits
        )
        assert refusal == budget.Refusal("global", Decimal("1"), Decimal("0.4"))
        assert budget.spent(session, scope="tenant:t1", period=period) == Decimal("0.4")


def test_the_budget_pays_for_every_large_attempt_not_only_the_last(pipeline, configure) -> None:
    from sqlalchemy import update

    from shared.db.models import StageRun

    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_BUDGET_USD="1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
    assert claim(job_id, Stage.LARGE, HELD) is not None  # an attempt that spent money, then its worker died
    with session_scope(pipeline) as session:
        session.connection().execute(
            update(StageRun).where(StageRun.job_id == job_id, StageRun.stage == "large").values(cost_usd=0.05)
        )
    summarize_large_job(job_id)  # the next attempt finishes the job

    large = [r for r in rows(pipeline, job_id)["runs"] if r[0] == "large"]
    assert [(r[1], r[5]) for r in large] == [(1, "interrupted"), (2, "ok")]
    total = sum((Decimal(str(r[3])) for r in large), Decimal(0))
    reservation, spend = budget_rows(pipeline, job_id)
    assert total > Decimal("0.05")
    assert reservation == (pytest.approx(total), True)
    assert spend["global"] == spend["tenant:t1"] == pytest.approx(total)


def test_a_settled_reservation_is_trued_up_to_a_later_cost(db_url) -> None:
    from datetime import UTC, datetime

    from shared.db import budget

    job_id, period = create_job(db_url), datetime(2026, 11, 21, tzinfo=UTC)
    with session_scope(db_url) as session:
        limits: dict[str, Decimal | None] = {"global": None, "tenant:t1": None}
        budget.reserve(
            session, job_id=job_id, tenant="t1", period=period, amount=Decimal("0.2"), limits=limits
        )
    for cost in (Decimal("0.05"), Decimal("0.08"), Decimal("0.08")):  # a late attempt priced after settling
        with session_scope(db_url) as session:
            budget.settle(session, job_id=job_id, cost=cost)
    with session_scope(db_url) as session:
        assert budget.spent(session, scope="global", period=period) == Decimal("0.08")
        assert budget.spent(session, scope="tenant:t1", period=period) == Decimal("0.08")
