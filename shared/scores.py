"""Aggregations of the small model's per-token margins: the gate's scores. Pure Python, no torch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# Score name -> aggregation over a job's generation calls (one per chunk, one per merge, one final), each a list
# of per-token margins. Token-level aggregations pool every call's tokens; the first-token margin is averaged
# over calls. Low score = unsure = escalate.
AGGREGATIONS: dict[str, Callable[[Sequence[Sequence[float]]], float]] = {
    "first_margin": lambda calls: _mean([c[0] for c in calls if c]),
    "mean_margin": lambda calls: _mean([m for c in calls for m in c]),
    "min_margin": lambda calls: min(m for c in calls for m in c),
    "p10_margin": lambda calls: _percentile([m for c in calls for m in c], 10),
}


def aggregate(calls: Sequence[Sequence[float]]) -> dict[str, float]:
    """Every aggregation of a job's margins; a job that generated no token is maximally unsure (all 0)."""
    if not any(calls):
        return dict.fromkeys(AGGREGATIONS, 0.0)
    return {name: float(fn(calls)) for name, fn in AGGREGATIONS.items()}
