"""The cost model: unit prices, the pure function that prices one stage run, and the always-large estimate.
No DB, no Celery."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

MTOK = Decimal(1_000_000)


class Price(BaseModel):
    """Unit prices of a model: per-token (hosted API) or per compute-second (self-hosted device), or both."""

    model_config = ConfigDict(frozen=True)

    input_per_mtok: Decimal = Decimal(0)  # USD per 1M input tokens
    output_per_mtok: Decimal = Decimal(0)  # USD per 1M output tokens
    per_second: Decimal = Decimal(0)  # USD per second of compute on the device


def _per_hour(usd: str) -> Price:
    return Price(per_second=Decimal(usd) / 3600)


# Self-hosted defaults: an L4-class GPU for FLAN-T5-large, an A100-class one for the 7B model, and device-rate
# fallbacks for local folders (e.g. `recap models init-test` models). Override with RECAP_PRICES.
DEFAULT_PRICES: dict[str, Price] = {
    "google/flan-t5-large": _per_hour("0.80"),
    "Qwen/Qwen2.5-7B-Instruct": _per_hour("3.00"),
    "device:cuda": _per_hour("1.50"),
    "device:cpu": _per_hour("0.10"),
}


def stage_cost(price: Price, *, input_tokens: int, output_tokens: int, seconds: float) -> Decimal:
    """USD for one stage run: token charges plus compute time at the device rate."""
    tokens = price.input_per_mtok * input_tokens / MTOK + price.output_per_mtok * output_tokens / MTOK
    compute = price.per_second * Decimal(str(round(seconds, 6)))
    return (tokens + compute).quantize(Decimal("1e-10"))


@dataclass(frozen=True)
class StageSpend:
    """One job's spend in one stage, summed over its attempts."""

    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def always_large(
    jobs: list[dict[str, StageSpend]], large_price: Price | None, per_job_fallback: Decimal
) -> tuple[Decimal, str]:
    """What sending every job to the large model would have cost, and how that was estimated.

    Escalated jobs count their real large-model cost. The others are priced from their own token counts (what
    the small model read and wrote): at the large model's per-token prices when it has them, else at the large
    model's USD per input token measured on the escalated jobs, else at `per_job_fallback` each (c_l). Ingestion
    is paid either way; the small stage and the gate would not have run.
    """
    ran = [job["large"] for job in jobs if "large" in job]
    tokens = sum(s.input_tokens for s in ran)
    per_token = large_price is not None and (large_price.input_per_mtok or large_price.output_per_mtok)
    measured = sum((s.cost_usd for s in ran), Decimal(0)) / tokens if tokens else None
    total = Decimal(0)
    for job in jobs:
        total += job["ingest"].cost_usd if "ingest" in job else Decimal(0)
        small = job.get("small", StageSpend(0, 0, Decimal(0)))
        if "large" in job:
            total += job["large"].cost_usd
        elif per_token and large_price is not None:
            total += stage_cost(
                large_price, input_tokens=small.input_tokens, output_tokens=small.output_tokens, seconds=0
            )
        elif measured is not None:
            total += measured * small.input_tokens
        else:
            total += per_job_fallback
    how = (
        "the large model's per-token prices times each job's own tokens"
        if per_token
        else "large-model USD per input token measured on the escalated jobs"
        if measured is not None
        else "RECAP_GATE_LARGE_COST_USD per job (nothing escalated to measure)"
    )
    return total.quantize(Decimal("1e-10")), how
