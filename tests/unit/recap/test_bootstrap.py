"""Bootstrap intervals, buyer figures and the calibration check on the hand-made table of test_evaluation."""

import pytest

from recap.bootstrap import bootstrap, interval, resample_indices
from recap.evaluation import evaluate
from recap.figures import at_rates, budget_rate, cross_fitted
from tests.unit.recap.test_evaluation import table

FULL = [0, 1, 2, 3]
SURE = [2, 2, 3, 3]  # only jobs the small model gets right: every curve is flat at quality 1, area 1


def test_percentile_interval_interpolates_like_numpy() -> None:
    assert interval([5.0, 1.0, 3.0, 2.0, 4.0], 0.5).model_dump() == {"low": 2.0, "high": 4.0}
    assert interval([0.0, 1.0], 0.9).model_dump() == pytest.approx({"low": 0.05, "high": 0.95})


def test_the_full_sample_alone_gives_zero_width_intervals_at_the_point_estimates() -> None:
    rows = table()
    report = evaluate(rows, scores=["mean_margin"], primary="q")
    result = bootstrap(rows, report, scores=["mean_margin"], draws=[FULL])
    margin = result.methods["mean_margin"]
    assert margin.area["q"].model_dump() == pytest.approx({"low": 0.875, "high": 0.875})
    # Margin 0.875, random 0.75, length 0.75 (test_evaluation): both differences 0.125, wholly above zero.
    assert margin.versus["random"].estimate == pytest.approx(0.125)
    assert margin.versus["length"].interval.model_dump() == pytest.approx({"low": 0.125, "high": 0.125})
    assert margin.versus["random"].better and margin.versus["length"].better
    half = margin.points[10]  # target 50%: jobs 0 and 1 escalate, cost 6, quality 1
    assert (half.target_rate, half.cost_per_job.low, half.cost_per_job.high) == (0.5, 6.0, 6.0)
    assert result.methods["random"].versus == {}  # differences are the scores' own


def test_paired_differences_from_hand_chosen_resamples() -> None:
    rows = table()
    report = evaluate(rows, scores=["mean_margin"], primary="q")
    # Differences vs random per resample: 0.125 (full), 0 (flat). 95%: 2.5th and 97.5th percentiles of the two.
    two = bootstrap(rows, report, scores=["mean_margin"], draws=[FULL, SURE])
    assert two.methods["mean_margin"].area["q"].model_dump() == pytest.approx(
        {"low": 0.875 + 0.125 * 0.025, "high": 0.875 + 0.125 * 0.975}
    )
    assert two.methods["mean_margin"].versus["random"].interval.model_dump() == pytest.approx(
        {"low": 0.125 * 0.025, "high": 0.125 * 0.975}
    )
    assert two.methods["mean_margin"].versus["random"].better
    # A third, flat resample: the sorted differences are 0, 0, 0.125 and the lower bound is 0: not better.
    three = bootstrap(rows, report, scores=["mean_margin"], draws=[FULL, SURE, [3, 3, 3, 3]])
    assert three.methods["mean_margin"].versus["random"].interval.low == 0.0
    assert not three.methods["mean_margin"].versus["random"].better


def test_resamples_are_reproducible_draws_with_replacement() -> None:
    draws = resample_indices(5, 200, seed=7)
    assert draws == resample_indices(5, 200, seed=7) != resample_indices(5, 200, seed=8)
    assert all(len(d) == 5 and set(d) <= set(range(5)) for d in draws)
    assert any(len(set(d)) < 5 for d in draws)  # with replacement: some meetings drawn twice


def test_buyer_figures_at_fixed_rates() -> None:
    # Rates 10/20/30/50% of 4 jobs escalate round(0.4, 0.8, 1.2, 2) = 0, 1, 1, 2 jobs, lowest margins first.
    points = at_rates(table(), "mean_margin", "q")
    assert [p.realized_rate for p in points] == [0.0, 0.25, 0.25, 0.5]
    assert [p.quality["q"] for p in points] == [0.5, 0.75, 0.75, 1.0]
    assert [p.cost_per_job for p in points] == [1.0, 3.5, 3.5, 6.0]
    # Always-large: quality 1, cost 10 per job (the large model alone).
    assert [p.relative_cost for p in points] == pytest.approx([0.1, 0.35, 0.35, 0.6])
    assert [p.share_of_large for p in points] == [0.5, 0.75, 0.75, 1.0]


def test_calibration_on_one_half_measured_on_the_other() -> None:
    # Margins exact in binary. Halves: jobs 0, 2 (.125, .375) and 1, 3 (.25, .5). At 50%, the first half's
    # threshold is .25 (between .125 and .375): on the second half .25 sits at it (sure enough) and nothing
    # escalates. The second half's threshold is .375: on the first half it escalates .125 only.
    rows = table(margins=[0.125, 0.25, 0.375, 0.5])
    pooled, folds = cross_fitted(rows, "mean_margin", 0.5, "q")
    assert [(f.calibrated_on, f.measured_on) for f in folds] == [("first", "second"), ("second", "first")]
    assert [f.threshold for f in folds] == [0.25, 0.375]
    assert [(f.realized_rate, f.gap) for f in folds] == [(0.0, -0.5), (0.5, 0.0)]
    # Pooled: only job 0 escalates -> quality (1 + 0 + 1 + 1) / 4, cost 1 + 10 / 4.
    assert (pooled.realized_rate, pooled.quality["q"], pooled.cost_per_job) == (0.25, 0.75, 3.5)


def test_the_budget_policy_rate_follows_the_cascade_formula() -> None:
    # c_s = 1, c_l = 10: a budget of 4 per job escalates (4 - 1) / 10 of the jobs; one below c_s none.
    assert budget_rate(table(), 4.0).rate == pytest.approx(0.3)
    assert budget_rate(table(), 0.5).rate == 0.0
