"""What a buyer asks of the cascade, read off the evaluation's table: quality and cost at a few escalation rates,
at the rate the gate is calibrated to (thresholds fitted on the other half of the meetings), and the rate a
budget buys. Pure Python: the same gate code (`threshold_for_rate`, `escalates`) decides every escalation.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from statistics import fmean

from pydantic import BaseModel

from recap.evaluation import Row, by_score, point
from services.gate.policies import escalates, rate_for_budget, threshold_for_rate

BUYER_RATES = (0.10, 0.20, 0.30, 0.50)


class Operating(BaseModel):
    """A score's cascade at one escalation rate."""

    target_rate: float
    realized_rate: float
    quality: dict[str, float]
    share_of_large: float  # primary quality over always-large's
    cost_per_job: float  # USD: the small model on every job, the large one on escalated jobs
    relative_cost: float  # over always-large's (the large model alone on every job)


class Fold(BaseModel):
    """Thresholds fitted on one half, applied to the other: the gap a deployment would see."""

    calibrated_on: str
    measured_on: str
    threshold: float
    realized_rate: float
    gap: float  # realized minus target rate
    quality: dict[str, float]  # of the cascade on the measured half


class BudgetRate(BaseModel):
    budget_per_job_usd: float
    small_cost_usd: float  # c_s, measured
    large_cost_usd: float  # c_l, measured
    rate: float


def operating(rows: Sequence[Row], chosen: Sequence[bool], target: float, primary: str) -> Operating:
    at = point(rows, target, chosen, list(rows[0].small))
    large_quality = fmean([r.large[primary] for r in rows])
    large_cost = fmean([r.cost_large for r in rows])
    return Operating(
        target_rate=target,
        realized_rate=at.realized_rate,
        quality=at.quality,
        share_of_large=at.quality[primary] / large_quality if large_quality else 0.0,
        cost_per_job=at.cost_per_job,
        relative_cost=at.cost_per_job / large_cost if large_cost else 0.0,
    )


def at_rates(
    rows: Sequence[Row], score: str, primary: str, rates: Sequence[float] = BUYER_RATES
) -> list[Operating]:
    """The score's cascade at each rate, its threshold the rate-quantile of these jobs' scores."""
    choose = by_score(rows, score)
    return [operating(rows, choose(rate), rate, primary) for rate in rates]


def halves(n: int) -> tuple[list[int], list[int]]:
    """Alternate jobs: the file's order (by domain in QMSum) is split evenly between the halves."""
    return list(range(0, n, 2)), list(range(1, n, 2))


def cross_fitted(rows: Sequence[Row], score: str, rate: float, primary: str) -> tuple[Operating, list[Fold]]:
    """Calibrate on one half, decide on the other, both ways: the pooled operating point and each fold."""
    first, second = halves(len(rows))
    chosen = [False] * len(rows)
    folds = []
    for (fit_name, fit), (use_name, use) in (
        (("first", first), ("second", second)),
        (("second", second), ("first", first)),
    ):
        threshold = threshold_for_rate(score, [rows[i].scores[score] for i in fit], rate)
        decided = [escalates(score, rows[i].scores[score], threshold) for i in use]
        for i, up in zip(use, decided, strict=True):
            chosen[i] = up
        measured = operating([rows[i] for i in use], decided, rate, primary)
        folds.append(
            Fold(
                calibrated_on=fit_name,
                measured_on=use_name,
                threshold=threshold,
                realized_rate=measured.realized_rate,
                gap=measured.realized_rate - rate,
                quality=measured.quality,
            )
        )
    return operating(rows, chosen, rate, primary), folds


def budget_rate(rows: Sequence[Row], budget: float) -> BudgetRate:
    """The rate the budget policy picks for this budget per job, from c_s and c_l measured on these jobs."""
    c_s, c_l = fmean([r.cost_small for r in rows]), fmean([r.cost_large for r in rows])
    rate = rate_for_budget(Decimal(str(budget)), Decimal(str(c_s)), Decimal(str(c_l)))
    return BudgetRate(budget_per_job_usd=budget, small_cost_usd=c_s, large_cost_usd=c_l, rate=rate)
