"""`recap tune report`: what tuning bought, from two `recap eval` runs on the same items and the same large model.

One run with the base small model, one with the tuned one (the large model's calls are replayed from the call
cache, so both runs pair the same large summaries). Per item: tuned minus base (a paired bootstrap interval),
each small model against the large one (the ratio of means, resampled), and the tuned pair's cascade: quality kept
and cost paid at the calibrated rate, and every gate score's cost-quality area against random's (paired).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from recap.bootstrap import interval, resample_indices
from shared.errors import InputError

METRICS = ("rouge1", "rouge2", "rougeL")
PRIMARY = "rougeL"
# The targets issue 24 holds the tuned small tier and its cascade to.
TARGET_TUNED_OVER_LARGE = 0.9
TARGET_KEPT = 0.95
TARGET_COST = 0.60


def _column(run: dict[str, Any], tier: str, metric: str) -> list[float]:
    return [float(job[tier][metric]) for job in run["jobs"]]


def _check_paired(base: dict[str, Any], tuned: dict[str, Any]) -> None:
    if [j["id"] for j in base["jobs"]] != [j["id"] for j in tuned["jobs"]]:
        raise InputError(
            "unpaired_runs", "the two evaluations did not score the same items in the same order"
        )
    if [j["large_text"] for j in base["jobs"]] != [j["large_text"] for j in tuned["jobs"]]:
        raise InputError("unpaired_runs", "the two evaluations' large summaries differ: use one call cache")


def _mean_with_interval(values: Sequence[float], draws: Sequence[Sequence[int]]) -> dict[str, Any]:
    spread = interval([fmean([values[i] for i in d]) for d in draws], 0.95)
    return {"mean": fmean(values), "interval": spread.model_dump()}


def _ratio(top: Sequence[float], bottom: Sequence[float], draws: Sequence[Sequence[int]]) -> dict[str, Any]:
    resampled = [fmean([top[i] for i in d]) / fmean([bottom[i] for i in d]) for d in draws]
    return {"ratio": fmean(top) / fmean(bottom), "interval": interval(resampled, 0.95).model_dump()}


def quality(base: dict[str, Any], tuned: dict[str, Any], draws: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Each metric: the three models' means, tuned minus base (paired) and both small models over large."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        base_small, tuned_small = _column(base, "small", metric), _column(tuned, "small", metric)
        large = _column(tuned, "large", metric)
        gains = [t - b for t, b in zip(tuned_small, base_small, strict=True)]
        out[metric] = {
            "base_small": _mean_with_interval(base_small, draws),
            "tuned_small": _mean_with_interval(tuned_small, draws),
            "large": _mean_with_interval(large, draws),
            "tuned_minus_base": _mean_with_interval(gains, draws),
            "tuned_wins": sum(g > 0 for g in gains) / len(gains),
            "base_over_large": _ratio(base_small, large, draws),
            "tuned_over_large": _ratio(tuned_small, large, draws),
        }
    return out


def cascade(run: dict[str, Any]) -> dict[str, Any]:
    """The pair's cascade at the calibrated rate with the configured gate score, and every score against random."""
    score = run["gate_score"]
    versus = {
        name: method["versus"]["random"]
        for name, method in run["bootstrap"]["methods"].items()
        if "random" in method.get("versus", {})
    }
    return {
        "gate_score": score,
        "target_rate": run["target_rate"],
        "calibrated": run["buyer"][score]["calibrated"],
        "rates": run["buyer"][score]["rates"],
        "scores_versus_random": versus,
        "best_score": max(versus, key=lambda name: versus[name]["estimate"]) if versus else None,
    }


def report(
    base: dict[str, Any], tuned: dict[str, Any], *, hosted: dict[str, Any] | None, resamples: int, seed: int
) -> dict[str, Any]:
    _check_paired(base, tuned)
    draws = resample_indices(len(tuned["jobs"]), resamples, seed)
    figures = quality(base, tuned, draws)
    pair = cascade(tuned)
    best = pair["scores_versus_random"].get(pair["best_score"] or "", {})
    at_rate = pair["calibrated"]
    return {
        "benchmark": "tune",
        "data": tuned["data"] | {"ids": None},
        "items": len(tuned["jobs"]),
        "models": {"base_small": base["models"]["small"], "tuned_small": tuned["models"]["small"]}
        | {"large": tuned["models"]["large"]},
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
        "quality": figures,
        "cascade_machine_prices": pair | {"prices_usd": tuned["prices_usd"]},
        "cascade_hosted_prices": cascade(hosted) | {"prices_usd": hosted["prices_usd"]} if hosted else None,
        "targets": {
            "tuned_over_large_rougeL": {
                "target": TARGET_TUNED_OVER_LARGE,
                "measured": figures[PRIMARY]["tuned_over_large"]["ratio"],
            },
            "cascade_quality_kept": {"target": TARGET_KEPT, "measured": at_rate["share_of_large"]},
            "cascade_relative_cost": {"target": TARGET_COST, "measured": at_rate["relative_cost"]},
            "gate_above_random": {
                "score": pair["best_score"],
                "interval": best.get("interval"),
                "met": bool(best.get("better")),
            },
        },
    }


def run(
    base: Path, tuned: Path, out: Path, *, hosted: Path | None, resamples: int, seed: int
) -> dict[str, Any]:
    def read(path: Path) -> dict[str, Any]:
        return dict(json.loads(path.read_text()))

    result = report(
        read(base), read(tuned), hosted=read(hosted) if hosted else None, resamples=resamples, seed=seed
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result
