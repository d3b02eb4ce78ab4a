"""Gate policies: which jobs escalate, from one score and a threshold in that score's units. No I/O.

Every policy ends in a threshold (`POLICIES`, by the name RECAP_GATE_POLICY gives): fixed (`threshold`), the
quantile of a calibration set that escalates a target rate (`target_rate`) or the rate a budget buys (`budget`),
or a running quantile of recent scores steered towards the target rate (`online`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Protocol

from inference.scores import SCORES, Unsure, check_score, risk
from shared.config import Settings, get_settings
from shared.errors import JobError
from shared.states import Decision


@dataclass(frozen=True)
class Outcome:
    route: Decision
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
    """The cascade formula (the research digest): the share of jobs an average budget per job can escalate."""
    return float(min(max((budget - small_cost) / large_cost, Decimal(0)), Decimal(1)))


def target_rate(settings: Settings) -> float:
    """The share of jobs to escalate: what the per-job budget buys, when one is set, else the target rate."""
    if settings.gate_budget_per_job_usd is not None:
        return rate_for_budget(
            settings.gate_budget_per_job_usd, settings.gate_small_cost_usd, settings.gate_large_cost_usd
        )
    return settings.gate_target_rate


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
        route=Decision.ESCALATE if escalate else Decision.ACCEPT,
        score_name=score_name,
        score=score,
        threshold=threshold,
        policy=policy,
        target_rate=target_rate,
        reason=f"{policy}: {score_name} {score:.4f} {relation} threshold {threshold:.4f}{note}",
    )


# Recent decisions of this policy and score, newest first: (score, decision). Read only if the policy asks.
Recent = Callable[[], Sequence[tuple[float, Decision]]]


class Policy(Protocol):
    name: ClassVar[str]

    def decide(self, scores: Mapping[str, float], settings: Settings, recent: Recent) -> Outcome: ...


class Threshold:
    """A fixed threshold (RECAP_GATE_THRESHOLD)."""

    name: ClassVar[str] = "threshold"

    def decide(self, scores: Mapping[str, float], settings: Settings, recent: Recent) -> Outcome:
        return decide(
            scores, score_name=settings.gate_score, threshold=settings.gate_threshold, policy=self.name
        )


class TargetRate:
    """The threshold `recap calibrate --target-rate` found for the rate; `budget`: for the rate a budget buys."""

    name: ClassVar[str] = "target_rate"

    def decide(self, scores: Mapping[str, float], settings: Settings, recent: Recent) -> Outcome:
        return decide(
            scores,
            score_name=settings.gate_score,
            threshold=settings.gate_threshold,
            policy=self.name,
            target_rate=target_rate(settings),
        )


class Budget(TargetRate):
    name: ClassVar[str] = "budget"


class Online:
    """The running quantile of recent scores, at the level that steers the realized rate to the target."""

    name: ClassVar[str] = "online"

    def decide(self, scores: Mapping[str, float], settings: Settings, recent: Recent) -> Outcome:
        name, target = settings.gate_score, target_rate(settings)
        seen = recent()
        if len(seen) < settings.gate_warmup_jobs:
            threshold = settings.gate_threshold
            note = f" (warm-up {len(seen) + 1}/{settings.gate_warmup_jobs} on the fixed threshold)"
        else:
            wanted = sum(1 for _, decision in seen if decision != Decision.ACCEPT)
            level = online_level(target, len(seen), wanted, settings.gate_online_correction_jobs)
            values = [score for score, _ in seen] + [float(scores.get(name, 0.0))]
            threshold = threshold_for_rate(name, values, level)
            note = f" (running quantile: the riskiest {level:.1%} of {len(values)} recent scores; {wanted} escalated)"
        return decide(
            scores, score_name=name, threshold=threshold, policy=self.name, target_rate=target, note=note
        )


POLICIES: dict[str, type[Policy]] = {cls.name: cls for cls in (Threshold, TargetRate, Budget, Online)}


def policy(settings: Settings | None = None) -> Policy:
    """The configured policy (`check`, run where each process starts, has vouched for its name)."""
    return POLICIES[(settings or get_settings()).gate_policy]()


def check(settings: Settings) -> None:
    """The gate's settings make sense: a known policy, and a score the small model's backend can give.

    Called where a process starts (the small and gate workers, `recap up`, calibrate, eval), not per job: a
    gate that can never get its score would fail every job.
    """
    if settings.gate_policy not in POLICIES:
        raise ValueError(
            f"unknown RECAP_GATE_POLICY={settings.gate_policy!r}; choose one of {', '.join(POLICIES)}"
        )
    check_score(settings)
