"""The cost model: unit prices and the pure function that prices one stage run. No DB, no Celery."""

from __future__ import annotations

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
