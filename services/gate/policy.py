"""Margin-sampling policy: a low score (an unsure small model) escalates. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import JobError
from shared.scores import AGGREGATIONS


class Route(StrEnum):
    ACCEPT = "accept"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class Outcome:
    route: Route
    score_name: str
    score: float
    threshold: float
    policy: str
    reason: str


def decide(scores: Mapping[str, float], *, score_name: str, threshold: float) -> Outcome:
    """Escalates when `scores[score_name]` is below `threshold`."""
    if score_name not in AGGREGATIONS or score_name not in scores:
        raise JobError(
            "gate_score_missing",
            f"no {score_name!r} score for this job; known scores: {', '.join(AGGREGATIONS)}",
        )
    score = float(scores[score_name])
    escalate = score < threshold
    relation = "<" if escalate else ">="
    return Outcome(
        route=Route.ESCALATE if escalate else Route.ACCEPT,
        score_name=score_name,
        score=score,
        threshold=threshold,
        policy="threshold",
        reason=f"{score_name} {score:.4f} {relation} threshold {threshold:.4f}",
    )
