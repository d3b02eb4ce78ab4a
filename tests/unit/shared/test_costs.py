from decimal import Decimal

import pytest

from shared.config import Settings
from shared.costs import Price, stage_cost


def test_per_second_price_charges_compute_time() -> None:
    price = Price(per_second=Decimal("3.6") / 3600)  # $3.60 per hour
    assert stage_cost(price, input_tokens=999, output_tokens=999, seconds=10) == Decimal("0.0100000000")


def test_per_token_price_charges_tokens() -> None:
    price = Price(input_per_mtok=Decimal("0.50"), output_per_mtok=Decimal("1.50"))
    cost = stage_cost(price, input_tokens=2_000, output_tokens=1_000, seconds=123)
    assert cost == Decimal("0.0010000000") + Decimal("0.0015000000")


def test_unknown_model_falls_back_to_its_device_rate() -> None:
    settings = Settings(
        prices={"m": Price(per_second=Decimal(1)), "device:cuda": Price(per_second=Decimal(2))}
    )
    assert settings.price_for("m", "cpu").per_second == 1
    assert settings.price_for("/models/local", "cuda:1").per_second == 2
    assert settings.price_for("/models/local", "cpu") == Price()


def test_prices_can_be_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECAP_PRICES", '{"google/flan-t5-large": {"per_second": "0.001"}}')
    assert Settings().price_for("google/flan-t5-large", "cuda").per_second == Decimal("0.001")
