"""`recap calibrate`: run the small model (and, for a budget, the large one on a sample) over meetings, and write
the gate's thresholds into the gate file every process reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from statistics import fmean

from recap import cascade
from services.gate.calibration import Calibration, calibrate, write_gate_file
from services.gate.policies import Budget, Online, TargetRate, rate_for_budget
from shared.config import get_settings
from shared.states import Tier


@dataclass(frozen=True)
class Request:
    data: Path
    meetings: list[cascade.Meeting]
    score: str
    path: Path  # the gate file
    target_rate: float | None = None  # exactly one of target_rate and budget
    budget: float | None = None
    online: bool = False
    large_cost: float | None = None  # c_l; None: measured on `large_sample` meetings
    large_sample: int = 3


def run(request: Request) -> tuple[Calibration, dict[str, object]]:
    """Calibrates and writes the gate file; returns the calibration and the settings written."""
    meetings = request.meetings
    small = cascade.run_tier(meetings, Tier.SMALL)
    c_s = fmean(r.cost_usd for r in small)
    values: dict[str, object] = {"gate_small_cost_usd": Decimal(str(c_s))}
    rate, c_l = request.target_rate, request.large_cost
    if (
        request.budget is not None
    ):  # the rate the budget buys, from c_s measured here and c_l measured or given
        if c_l is None:
            c_l = fmean(r.cost_usd for r in cascade.run_tier(meetings[: request.large_sample], Tier.LARGE))
        rate = rate_for_budget(Decimal(str(request.budget)), Decimal(str(c_s)), Decimal(str(c_l)))
        values |= {
            "gate_budget_per_job_usd": Decimal(str(request.budget)),
            "gate_large_cost_usd": Decimal(str(c_l)),
        }
    else:
        values["gate_budget_per_job_usd"] = None  # a rate calibration replaces an earlier budget one
    assert rate is not None, "give exactly one of target_rate and budget"
    result = calibrate(
        [r.scores for r in small],
        [r.cost_usd for r in small],
        rate=rate,
        large_cost_usd=c_l if request.budget is not None else None,
    )
    policy = Online.name if request.online else Budget.name if request.budget is not None else TargetRate.name
    values |= {
        "gate_policy": policy,
        "gate_score": request.score,
        "gate_threshold": result.thresholds[request.score],
        "gate_thresholds": result.thresholds,
        "gate_target_rate": result.rate,
        "gate_calibration": {
            "data": str(request.data),
            "meetings": len(meetings),
            "small_model": get_settings().small_model,
            "realized_rates": result.realized,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    write_gate_file(request.path, values)
    return result, values
