"""Gate policies: which jobs escalate, from one score and a threshold in that score's units. Pure, no I/O.

Every policy ends in a threshold: fixed (`threshold`), the quantile of a calibration set that escalates a
target rate (`target_rate`) or the rate a budget buys (`budget`), or a running quantile of recent scores
steered towards the target rate (`online`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shared.errors import JobError
from shared.scores import SCORES, Unsure, risk


class Route(StrEnum):
    ACCEPT = "accept"
    ESCALATE = "escalate"
    DEGRADED = "degraded"  # the policy escalated; a spent budget kept the small summary


@dataclass(frozen=True)
class Outcome:
    route: Route
    score_name: str
    score: float
    threshold: float
    policy: str
    reason: str
    target_rate: float | None = None


def escalates(score_name: str, value: float, threshold: float) -> bool:
    """True when `value` is on the unsure side of `threshold` (a value at the threshold is sure enough)."""
    return risk(score_name, value) > risk(score_name, threshold)


def threshold_for_rate(score_name: str, values: Sequence[float], rate: float) -> float:
    """The threshold that escalates `rate` of `values` (the riskiest ones), halfway between two neighbours.

    Rate 0 returns the least sure value seen (nothing riskier escalates on this set); rate 1 an infinite
    threshold on the sure side (everything escalates). Tied values escalate together, so the realized rate on
    `values` can fall short of `rate` where scores tie.
    """
    if not values:
        raise ValueError("no scores to calibrate on")
    ordered = sorted(values, key=lambda v: risk(score_name, v), reverse=True)  # riskiest first
    k = round(rate * len(ordered))
    if k <= 0:
        return ordered[0]
    if k >= len(ordered):
        return -math.inf if SCORES[score_name].unsure is Unsure.HIGH else math.inf
    return (ordered[k - 1] + ordered[k]) / 2


def rate_for_budget(budget: Decimal, small_cost: Decimal, large_cost: Decimal) -> float:
    """The cascade formula (RESEARCH.md): the share of jobs an average budget per job can escalate."""
    return float(min(max((budget - small_cost) / large_cost, Decimal(0)), Decimal(1)))


def online_level(target: float, decided: int, escalated: int, correction_jobs: float) -> float:
    """The escalation rate to aim at now: the target, plus the escalations owed (or minus the surplus)
    spread over `correction_jobs`, so the realized rate is pulled back to the target instead of drifting."""
    owed = target * decided - escalated
    return min(max(target + owed / correction_jobs, 0.0), 1.0)


def decide(
    scores: Mapping[str, float],
    *,
    score_name: str,
    threshold: float,
    policy: str = "threshold",
    target_rate: float | None = None,
    note: str = "",
) -> Outcome:
    """Escalates when `scores[score_name]` is on the unsure side of `threshold`."""
    if score_name not in SCORES or score_name not in scores:
        raise JobError(
            "gate_score_missing",
            f"no {score_name!r} score for this job; known scores: {', '.join(SCORES)}",
        )
    score = float(scores[score_name])
    escalate = escalates(score_name, score, threshold)
    low = SCORES[score_name].unsure is Unsure.LOW
    relation = ("<" if low else ">") if escalate else (">=" if low else "<=")
    return Outcome(
        route=Route.ESCALATE if escalate else Route.ACCEPT,
        score_name=score_name,
        score=score,
        threshold=threshold,
        policy=policy,
        target_rate=target_rate,
        reason=f"{policy}: {score_name} {score:.4f} {relation} threshold {threshold:.4f}{note}",
    )
