"""Calibration: every score's threshold for an escalation rate on a set of small-model runs, and the gate file
that carries it to every process (a settings source: `shared/config.py`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.scores import given_by_all
from services.gate.policies import escalates, threshold_for_rate


@dataclass(frozen=True)
class Calibration:
    rate: float  # the escalation rate the thresholds aim at
    thresholds: dict[str, float]  # per score
    realized: dict[str, float]  # per score: the rate its threshold escalates on the calibration set
    small_cost_usd: float  # c_s: mean per job on the calibration set
    large_cost_usd: float | None  # c_l: measured or given (budget calibration only)


def calibrate(
    scores: Sequence[Mapping[str, float]],
    costs: Sequence[float],
    *,
    rate: float,
    large_cost_usd: float | None = None,
) -> Calibration:
    """Every score's threshold for `rate` on these small-model runs' scores (the rate-quantile of the score)."""
    thresholds, realized = {}, {}
    for name in given_by_all(scores):
        values = [s[name] for s in scores]
        thresholds[name] = threshold_for_rate(name, values, rate)
        realized[name] = sum(escalates(name, v, thresholds[name]) for v in values) / len(values)
    return Calibration(rate, thresholds, realized, sum(costs) / len(costs), large_cost_usd)


def write_gate_file(path: Path, values: Mapping[str, object]) -> None:
    """Replaces the gate file in one step (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, default=str) + "\n")
    tmp.replace(path)
