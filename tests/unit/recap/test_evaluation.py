"""The evaluation harness on hand-made tables whose answers are worked out by hand."""

import pytest

from recap.evaluation import Row, area, evaluate

# Four jobs; the small model is wrong on the first two, the large model right on all; costs 1 and 10.
MARGINS = [0.1, 0.2, 0.3, 0.4]
LENGTHS = [10.0, 40.0, 30.0, 20.0]
SMALL_Q = [0.0, 0.0, 1.0, 1.0]


def table(margins=MARGINS, lengths=LENGTHS, small_q=SMALL_Q, large_q=(1.0, 1.0, 1.0, 1.0)) -> list[Row]:
    return [
        Row(str(i), {"mean_margin": m, "input_tokens": n}, {"q": s}, {"q": large}, 1.0, 10.0)
        for i, (m, n, s, large) in enumerate(zip(margins, lengths, small_q, large_q, strict=True))
    ]


def test_areas_and_points_match_the_hand_computed_curves() -> None:
    report = evaluate(table(), scores=["mean_margin"], primary="q")
    assert report.cost_range == (1.0, 11.0)
    assert report.always_small == {"q": 0.5} and report.always_large == {"q": 1.0}
    # Margin escalates jobs 0 and 1 first: points (1, .5) (3.5, .75) (6, 1) (8.5, 1) (11, 1) -> 8.75 / 10.
    assert report.methods["mean_margin"].auc["q"] == pytest.approx(0.875)
    assert report.methods["oracle"].auc["q"] == pytest.approx(0.875)
    # Length escalates the longest first (jobs 1, 2, 3, 0): (1,.5) (3.5,.75) (6,.75) (8.5,.75) (11,1) -> 0.75.
    assert report.methods["length"].auc["q"] == pytest.approx(0.75)
    # Random, in expectation: a straight line from (1, .5) to (11, 1) -> 0.75; at 25% one job of four.
    assert report.methods["random"].auc["q"] == pytest.approx(0.75)
    quarter = next(p for p in report.methods["random"].points if p.target_rate == 0.25)
    assert (quarter.realized_rate, quarter.cost_per_job, quarter.quality) == (0.25, 3.5, {"q": 0.625})
    assert report.best == "mean_margin"

    half = next(p for p in report.methods["mean_margin"].points if p.target_rate == 0.5)
    assert (half.realized_rate, half.cost_per_job, half.quality) == (0.5, 6.0, {"q": 1.0})
    ends = report.methods["mean_margin"].points
    assert (ends[0].realized_rate, ends[-1].realized_rate) == (0.0, 1.0)
    assert [p.target_rate for p in ends] == pytest.approx([i / 20 for i in range(21)])


def test_the_oracle_escalates_only_where_the_large_model_is_better_first() -> None:
    # The large model is worse on job 3: the oracle's curve peaks at 2 escalations, then falls.
    rows = table(large_q=(1.0, 1.0, 1.0, 0.0))
    report = evaluate(rows, scores=["mean_margin"], primary="q")
    oracle = {round(p.realized_rate, 2): p.quality["q"] for p in report.methods["oracle"].points}
    assert oracle[0.5] == 1.0 and oracle[1.0] == 0.75
    assert max(oracle.values()) == 1.0


def test_tied_scores_show_a_realized_rate_below_the_target() -> None:
    report = evaluate(table(margins=[1.0, 1.0, 1.0, 1.0]), scores=["mean_margin"], primary="q")
    points = report.methods["mean_margin"].points
    # Until the rate asks for all four jobs (round(rate * 4) == 4 from 90%), no threshold separates them.
    assert {p.target_rate: p.realized_rate for p in points if p.target_rate < 0.875} == {
        p.target_rate: 0.0 for p in points if p.target_rate < 0.875
    }
    assert {p.realized_rate for p in points if p.target_rate >= 0.875} == {1.0}


def test_area_of_a_flat_cost_range_is_the_mean_quality() -> None:
    from recap.evaluation import Point

    points = [
        Point(target_rate=r, realized_rate=r, cost_per_job=2.0, quality={"q": q})
        for r, q in ((0, 0.2), (1, 0.4))
    ]
    assert area(points, "q", (2.0, 2.0)) == pytest.approx(0.3)
