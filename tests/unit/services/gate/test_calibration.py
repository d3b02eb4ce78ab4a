"""Calibration: thresholds per score for a rate, on the scores a backend gives."""

import pytest

from inference.scores import Generated, TokenStats, aggregate
from services.gate.calibration import calibrate


def test_calibration_leaves_out_a_score_the_backend_does_not_give() -> None:
    scores = [
        aggregate(Generated([TokenStats(margins=[m], logprobs=[-m])]), margin_cut=0.3)
        for m in (0.2, 0.4, 0.6, 0.8)
    ]
    result = calibrate(scores, [0.001] * 4, rate=0.25)
    assert result.small_cost_usd == pytest.approx(0.001)
    assert "mean_entropy" not in result.thresholds
    assert result.thresholds["mean_margin"] == pytest.approx(0.3)  # between the least sure and the next
    assert result.realized["mean_margin"] == 0.25
