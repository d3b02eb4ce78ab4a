"""The cascade's evaluation, without model calls: from a table of per-job scores, qualities and costs, the
cost-quality curve of every escalation method and its area normalized by the cost range (the research
digest).

Escalation by a score goes through the gate's own code (`threshold_for_rate`, `escalates`), so the realized
rate is what the gate would realize on these jobs, ties included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from services.gate.policies import escalates, threshold_for_rate

if TYPE_CHECKING:
    from recap.bootstrap import Bootstrap

RATES = [i / 20 for i in range(21)]  # 0%, 5%, ... 100%
LENGTH_SCORE = "input_tokens"  # the transcript's length, in the small model's tokens


@dataclass(frozen=True)
class Row:
    """One job: the small model's gate scores, each tier's quality per metric, each tier's cost."""

    job: str
    scores: dict[str, float]
    small: dict[str, float]
    large: dict[str, float]
    cost_small: float
    cost_large: float


class Point(BaseModel):
    target_rate: float
    realized_rate: float
    cost_per_job: float
    quality: dict[str, float]


class Curve(BaseModel):
    auc: dict[str, float]  # per metric: area under quality over cost, divided by the cost range
    points: list[Point]


class Report(BaseModel):
    jobs: int
    metrics: list[str]
    primary: str
    cost_range: tuple[float, float]  # always small, always large (per job)
    always_small: dict[str, float]
    always_large: dict[str, float]
    methods: dict[str, Curve]
    best: str  # the score (not a baseline) with the highest primary area


Escalate = Callable[[float], list[bool]]  # a target rate -> which jobs escalate


def point(rows: Sequence[Row], rate: float, chosen: Sequence[bool], metrics: Sequence[str]) -> Point:
    n = len(rows)
    return Point(
        target_rate=rate,
        realized_rate=sum(chosen) / n,
        cost_per_job=sum(
            r.cost_small + (r.cost_large if up else 0.0) for r, up in zip(rows, chosen, strict=True)
        )
        / n,
        quality={
            m: sum((r.large if up else r.small)[m] for r, up in zip(rows, chosen, strict=True)) / n
            for m in metrics
        },
    )


def area(points: Sequence[Point], metric: str, cost_range: tuple[float, float]) -> float:
    """Trapezoid area under quality over cost, divided by the cost range (the mean quality when it is 0)."""
    ordered = sorted(points, key=lambda p: (p.cost_per_job, p.realized_rate))
    lo, hi = cost_range
    if hi - lo <= 0:
        return sum(p.quality[metric] for p in ordered) / len(ordered)
    total = sum(
        (b.cost_per_job - a.cost_per_job) * (a.quality[metric] + b.quality[metric]) / 2
        for a, b in zip(ordered, ordered[1:], strict=False)
    )
    return total / (hi - lo)


def _curve(
    rows: Sequence[Row], choose: Escalate, metrics: Sequence[str], cost_range: tuple[float, float]
) -> Curve:
    points = [point(rows, rate, choose(rate), metrics) for rate in RATES]
    return Curve(auc={m: area(points, m, cost_range) for m in metrics}, points=points)


def by_score(rows: Sequence[Row], name: str) -> Escalate:
    values = [r.scores[name] for r in rows]

    def choose(rate: float) -> list[bool]:
        threshold = threshold_for_rate(name, values, rate)
        return [escalates(name, v, threshold) for v in values]

    return choose


def by_ranking(order: Sequence[int]) -> Escalate:
    """Escalates the first round(rate * n) jobs of `order`."""

    def choose(rate: float) -> list[bool]:
        picked = set(order[: round(rate * len(order))])
        return [i in picked for i in range(len(order))]

    return choose


def expected_random(rows: Sequence[Row], metrics: Sequence[str], cost_range: tuple[float, float]) -> Curve:
    """Escalating round(rate * n) jobs drawn at random, in expectation: each job escalates with probability
    k / n, so cost and quality move on the straight line from always-small to always-large (exact, no draws)."""
    n = len(rows)
    points = []
    for rate in RATES:
        share = round(rate * n) / n
        points.append(
            Point(
                target_rate=rate,
                realized_rate=share,
                cost_per_job=fmean([r.cost_small + share * r.cost_large for r in rows]),
                quality={
                    m: fmean([(1 - share) * r.small[m] + share * r.large[m] for r in rows]) for m in metrics
                },
            )
        )
    return Curve(auc={m: area(points, m, cost_range) for m in metrics}, points=points)


def evaluate(rows: Sequence[Row], *, scores: Sequence[str], primary: str) -> Report:
    """Every score's curve, and the baselines: random (its expectation), length, oracle; plus both tiers alone."""
    if not rows:
        raise ValueError("nothing to evaluate")
    metrics = list(rows[0].small)
    n = len(rows)
    mean_small, mean_large = (sum(r.cost_small for r in rows) / n, sum(r.cost_large for r in rows) / n)
    cost_range = (mean_small, mean_small + mean_large)
    methods = {name: _curve(rows, by_score(rows, name), metrics, cost_range) for name in scores}
    methods["random"] = expected_random(rows, metrics, cost_range)
    if all(LENGTH_SCORE in r.scores for r in rows):
        methods["length"] = _curve(rows, by_score(rows, LENGTH_SCORE), metrics, cost_range)
    # The oracle knows each job's gain from escalating (on the primary metric) and escalates the largest first:
    # at the rate where gains turn negative it escalates exactly the jobs the large model does better on.
    gains = sorted(range(n), key=lambda i: rows[i].small[primary] - rows[i].large[primary])
    methods["oracle"] = _curve(rows, by_ranking(gains), metrics, cost_range)
    return Report(
        jobs=n,
        metrics=metrics,
        primary=primary,
        cost_range=cost_range,
        always_small={m: sum(r.small[m] for r in rows) / n for m in metrics},
        always_large={m: sum(r.large[m] for r in rows) / n for m in metrics},
        methods=methods,
        # A score that is the same on every job (no truncation anywhere) ranks nothing: its curve is random's.
        best=max(
            [s for s in scores if len({r.scores[s] for r in rows}) > 1] or scores,
            key=lambda s: methods[s].auc[primary],
        ),
    )


def plot(
    report: Report,
    path: str,
    *,
    title: str,
    metric: str | None = None,
    methods: Sequence[str] | None = None,
    cost_unit: str = "USD",
    bands: Bootstrap | None = None,
) -> None:
    """Cost-quality curves of the methods (all by default) on one chart, for one metric (the primary), as PNG;
    with `bands`, each curve's pointwise bootstrap interval of quality is shaded around it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric or report.primary
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name in methods or report.methods:
        curve = report.methods[name]
        order = sorted(range(len(curve.points)), key=lambda k: curve.points[k].cost_per_job)
        costs = [curve.points[k].cost_per_job for k in order]
        style = "--" if name in ("random", "oracle", "length") else "-"
        label = f"{name} (area {curve.auc[metric]:.3f})"
        if bands and name in bands.methods:
            area_ci = bands.methods[name].area[metric]
            label = f"{name} (area {curve.auc[metric]:.3f} [{area_ci.low:.3f}, {area_ci.high:.3f}])"
        (line,) = ax.plot(
            costs, [curve.points[k].quality[metric] for k in order], style, marker=".", label=label
        )
        if bands and name in bands.methods:
            spans = [bands.methods[name].points[k].quality[metric] for k in order]
            ax.fill_between(
                costs, [b.low for b in spans], [b.high for b in spans], color=line.get_color(), alpha=0.12
            )
    lo, hi = report.cost_range
    ax.scatter([lo, hi], [report.always_small[metric], report.always_large[metric]], c="k", zorder=5)
    ax.annotate("always small", (lo, report.always_small[metric]))
    ax.annotate("always large", (hi, report.always_large[metric]))
    ax.set_xlabel(f"cost per job ({cost_unit})")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_margins(jobs: Sequence[dict[str, Any]], path: str, *, title: str, metric: str = "rougeL") -> None:
    """Histogram of the small model's mean margin, split by whether the large model scored better on `metric`:
    where the two groups separate, a margin threshold escalates the right jobs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    better = [j["scores"]["mean_margin"] for j in jobs if j["large"][metric] > j["small"][metric]]
    not_better = [j["scores"]["mean_margin"] for j in jobs if j["large"][metric] <= j["small"][metric]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    values = better + not_better
    bins = [min(values) + (max(values) - min(values)) * k / 15 for k in range(16)] if values else 10
    ax.hist(
        [better, not_better],
        bins=bins,
        label=[f"large better ({len(better)})", f"large not better ({len(not_better)})"],
        color=["tab:orange", "tab:blue"],
        alpha=0.8,
    )
    ax.set_xlabel("small model's mean margin (low: unsure)")
    ax.set_ylabel("meetings")
    ax.set_title(f"{title}: mean margin by whether the large model did better ({metric})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
