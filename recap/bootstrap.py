"""Confidence intervals for the evaluation, by bootstrap over meetings (percentile intervals).

Every resample draws n meetings with replacement and reruns the whole evaluation on them (thresholds, costs and
the normalizing cost range included), so an interval holds all of the evaluation's sampling noise. Differences
between methods are paired: both areas come from the same resample.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

from recap.evaluation import Report, Row, evaluate
from shared.percentile import percentile

BASELINES = ("random", "length")


class Interval(BaseModel):
    low: float
    high: float


class Difference(BaseModel):
    """A score's area minus a baseline's, on the full data, with its paired interval."""

    estimate: float
    interval: Interval
    better: bool  # the interval lies wholly above zero


class PointInterval(BaseModel):
    target_rate: float
    realized_rate: Interval
    cost_per_job: Interval
    quality: dict[str, Interval]


class MethodIntervals(BaseModel):
    area: dict[str, Interval]  # per metric
    points: list[PointInterval]
    versus: dict[str, Difference]  # per baseline, on the primary metric (scores only)


class Bootstrap(BaseModel):
    resamples: int
    level: float
    seed: int | None
    methods: dict[str, MethodIntervals]


def resample_indices(n: int, count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [rng.choices(range(n), k=n) for _ in range(count)]


def interval(values: Sequence[float], level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    return Interval(low=percentile(values, tail), high=percentile(values, 100 - tail))


def bootstrap(
    rows: Sequence[Row],
    report: Report,
    *,
    scores: Sequence[str],
    draws: Sequence[Sequence[int]],
    level: float = 0.95,
    seed: int | None = None,
) -> Bootstrap:
    """Intervals for every method of `report` (the full-data evaluation of `rows`) from these resamples."""
    if not draws:
        raise ValueError("the bootstrap needs at least one resample")
    primary, metrics = report.primary, report.metrics
    reports = [evaluate([rows[i] for i in draw], scores=scores, primary=primary) for draw in draws]
    methods = {}
    for name, curve in report.methods.items():
        if not all(name in r.methods for r in reports):  # e.g. length, when some job lacks it
            continue
        curves = [r.methods[name] for r in reports]
        points = [
            PointInterval(
                target_rate=point.target_rate,
                realized_rate=interval([c.points[k].realized_rate for c in curves], level),
                cost_per_job=interval([c.points[k].cost_per_job for c in curves], level),
                quality={m: interval([c.points[k].quality[m] for c in curves], level) for m in metrics},
            )
            for k, point in enumerate(curve.points)
        ]
        versus = {}
        if name in scores:
            for base in BASELINES:
                if base not in report.methods or not all(base in r.methods for r in reports):
                    continue
                paired = [r.methods[name].auc[primary] - r.methods[base].auc[primary] for r in reports]
                spread = interval(paired, level)
                versus[base] = Difference(
                    estimate=curve.auc[primary] - report.methods[base].auc[primary],
                    interval=spread,
                    better=spread.low > 0,
                )
        methods[name] = MethodIntervals(
            area={m: interval([c.auc[m] for c in curves], level) for m in metrics},
            points=points,
            versus=versus,
        )
    return Bootstrap(resamples=len(draws), level=level, seed=seed, methods=methods)
