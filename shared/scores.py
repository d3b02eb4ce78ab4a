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


# Score name -> aggregation over one generation's margins. Low score = unsure = escalate.
AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "first_margin": lambda m: m[0],
    "mean_margin": lambda m: sum(m) / len(m),
    "min_margin": min,
    "p10_margin": lambda m: _percentile(m, 10),
}


def aggregate(margins: Sequence[float]) -> dict[str, float]:
    """Every aggregation of a generation's margins; an empty generation is maximally unsure (all 0)."""
    if not margins:
        return dict.fromkeys(AGGREGATIONS, 0.0)
    return {name: float(fn(margins)) for name, fn in AGGREGATIONS.items()}
