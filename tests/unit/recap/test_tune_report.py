"""`recap tune report`: tuned against base small on the same items, paired, and the tuned pair's cascade."""

import pytest

from recap.benchmarks.tune_report import report
from shared.errors import InputError


def _run(small: list[float], large: list[float], *, large_text: str = "L") -> dict:
    jobs = [
        {
            "id": f"item{i}",
            "small": dict.fromkeys(("rouge1", "rouge2", "rougeL"), s),
            "large": dict.fromkeys(("rouge1", "rouge2", "rougeL"), lg),
            "large_text": large_text,
        }
        for i, (s, lg) in enumerate(zip(small, large, strict=True))
    ]
    calibrated = {"share_of_large": 0.8, "relative_cost": 0.5}
    versus = {"random": {"estimate": 0.01, "interval": {"low": 0.002, "high": 0.02}, "better": True}}
    return {
        "jobs": jobs,
        "data": {"path": "segments.jsonl", "ids": ["item0"]},
        "models": {"small": {"spec": "s"}, "large": {"spec": "l"}},
        "gate_score": "mean_margin",
        "target_rate": 0.25,
        "buyer": {"mean_margin": {"calibrated": calibrated, "rates": []}},
        "bootstrap": {"methods": {"mean_margin": {"versus": versus}, "random": {"versus": {}}}},
        "prices_usd": {},
    }


def test_the_gain_is_paired_per_item_and_the_ratio_is_against_the_same_large_summaries() -> None:
    large = [0.4, 0.2, 0.3, 0.5]
    base, tuned = _run([0.1, 0.1, 0.2, 0.2], large), _run([0.2, 0.1, 0.3, 0.4], large)
    figures = report(base, tuned, hosted=None, resamples=200, seed=1)
    rouge_l = figures["quality"]["rougeL"]
    assert rouge_l["tuned_minus_base"]["mean"] == pytest.approx(0.1)
    assert rouge_l["tuned_minus_base"]["interval"]["low"] >= 0  # no item got worse
    assert rouge_l["tuned_wins"] == 0.75
    assert rouge_l["tuned_over_large"]["ratio"] == pytest.approx(1.0 / 1.4)
    assert figures["targets"]["tuned_over_large_rougeL"]["measured"] == pytest.approx(1.0 / 1.4)
    assert figures["targets"]["gate_above_random"] == {
        "score": "mean_margin",
        "interval": {"low": 0.002, "high": 0.02},
        "met": True,
    }


def test_runs_that_did_not_share_the_large_models_calls_are_refused() -> None:
    with pytest.raises(InputError) as refused:
        report(_run([0.1], [0.3]), _run([0.2], [0.3], large_text="other"), hosted=None, resamples=10, seed=0)
    assert refused.value.code == "unpaired_runs"
