"""The gate's settings, the large model's budgets and the price table; and the calibrated gate file, a settings
source of its own between the environment and `.env`. `Settings` inherits these fields (read as RECAP_<NAME>)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, JsonConfigSettingsSource, PydanticBaseSettingsSource

from shared.costs import DEFAULT_PRICES, Price


class GateFields(BaseSettings):
    # Gate (services/gate/policies.py, which checks these where a process starts): a job escalates when its
    # score is on the unsure side of the threshold (below it for margins and log-probability, above it for entropy, length, truncation). `recap calibrate`
    # writes these into the gate file (RECAP_GATE_FILE, else <RECAP_VAR_DIR>/gate.json), which every process
    # reads; environment variables still override it.
    gate_policy: str = "threshold"  # a name in services/gate/policies.py: POLICIES
    gate_score: str = "mean_margin"
    gate_threshold: float = 0.35  # in the score's units; the online mode's threshold during its warm-up
    gate_thresholds: dict[str, float] = {}  # every score's calibrated threshold, kept for reference
    gate_target_rate: float = Field(0.25, ge=0, le=1)  # share of jobs to escalate (target_rate, online)
    # Average USD per job (budget policy; online too, instead of the target rate): the cascade formula gives
    # the rate, p = min(max((B - c_s) / c_l, 0), 1), from the per-job costs below.
    gate_budget_per_job_usd: Decimal | None = Field(None, ge=0)
    gate_small_cost_usd: Decimal = Field(Decimal("0.001"), ge=0)  # c_s; `recap calibrate` measures it
    gate_large_cost_usd: Decimal = Field(Decimal("0.02"), gt=0)  # c_l, also what an escalation reserves
    gate_margin_cut: float = Field(0.3, ge=0, le=1)  # low_margin_share counts tokens with a margin below it
    gate_warmup_jobs: int = Field(20, ge=0)  # online: decisions on the fixed threshold before adapting
    gate_online_window: int = Field(1000, ge=1)  # online: recent decisions the running quantile reads
    # Online: a gap between the realized and the target rate is paid back over about this many jobs.
    gate_online_correction_jobs: float = Field(20, gt=0)
    gate_calibration: dict[str, Any] | None = None  # what calibrated these settings (written by calibrate)
    # Hard budget guard on the large model, per period (UTC). Spend is reserved (gate_large_cost_usd) before
    # an escalation and settled to the real cost; a job that finds a budget spent ends `degraded`.
    budget_period: Literal["hour", "day", "month"] = "day"
    budget_usd: Decimal | None = Field(None, ge=0)  # global; None: unlimited
    tenant_budget_usd: Decimal | None = Field(None, ge=0)  # every tenant's; None: unlimited
    tenant_budgets_usd: dict[str, Decimal] = {}  # per-tenant overrides of tenant_budget_usd

    # Prices: model id (or "device:<type>" fallback) -> unit prices. JSON in RECAP_PRICES overrides the table.
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    price_version: str = "2026-11"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The calibrated gate file sits between the environment and `.env`: a calibration outranks what `.env`
        # said before it, an explicit environment variable outranks both.
        gate = JsonConfigSettingsSource(settings_cls, json_file=gate_file_path())
        return init_settings, env_settings, gate, dotenv_settings, file_secret_settings


def gate_file_path() -> Path:
    """Where the calibrated gate settings are read from: RECAP_GATE_FILE, else <RECAP_VAR_DIR>/gate.json.

    Read from the environment alone: the file is itself a settings source, so it cannot wait for the others.
    """
    if path := os.environ.get("RECAP_GATE_FILE"):
        return Path(path)
    return Path(os.environ.get("RECAP_VAR_DIR") or "var") / "gate.json"
