import math
from decimal import Decimal

import pytest

from services.gate.policy import (
    Route,
    decide,
    escalates,
    online_level,
    rate_for_budget,
    threshold_for_rate,
)
from shared.errors import JobError
from shared.scores import SCORES

SCORES_OF_A_JOB = {"first_margin": 0.9, "mean_margin": 0.4, "min_margin": 0.01, "mean_entropy": 2.0}


@pytest.mark.parametrize(
    ("score_name", "threshold", "route"),
    [
        ("mean_margin", 0.5, Route.ESCALATE),
        ("mean_margin", 0.4, Route.ACCEPT),  # at the threshold: confident enough
        ("first_margin", 0.5, Route.ACCEPT),
        ("min_margin", 0.0, Route.ACCEPT),  # threshold 0 never escalates a margin
        ("first_margin", 1.01, Route.ESCALATE),  # above any margin: always escalates
        ("mean_entropy", 1.5, Route.ESCALATE),  # entropy: high is unsure
        ("mean_entropy", 2.0, Route.ACCEPT),
        ("mean_entropy", 3.0, Route.ACCEPT),
    ],
)
def test_the_unsure_side_of_the_threshold_escalates(score_name: str, threshold: float, route: Route) -> None:
    outcome = decide(SCORES_OF_A_JOB, score_name=score_name, threshold=threshold)
    assert outcome.route is route
    assert outcome.score == SCORES_OF_A_JOB[score_name]
    assert outcome.threshold == threshold
    assert score_name in outcome.reason


def test_a_missing_score_is_a_coded_error() -> None:
    with pytest.raises(JobError) as err:
        decide({"first_margin": 0.3}, score_name="mean_margin", threshold=0.5)
    assert err.value.code == "gate_score_missing"


def test_every_score_declares_which_side_is_unsure() -> None:
    low = {name for name, s in SCORES.items() if s.unsure == "low"}
    assert low == {"first_margin", "mean_margin", "min_margin", "p10_margin", "mean_logprob"}


@pytest.mark.parametrize("name", ["mean_margin", "mean_entropy"])
@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (0.25, 1), (0.5, 2), (0.75, 3), (1.0, 4)])
def test_the_rate_quantile_escalates_the_riskiest_share(name: str, rate: float, expected: int) -> None:
    values = [0.1, 0.7, 0.3, 0.9]
    threshold = threshold_for_rate(name, values, rate)
    chosen = [v for v in values if escalates(name, v, threshold)]
    assert len(chosen) == expected
    # Margins escalate the lowest values, entropy the highest.
    riskiest = sorted(values) if name == "mean_margin" else sorted(values, reverse=True)
    assert sorted(chosen) == sorted(riskiest[:expected])


def test_rate_thresholds_sit_between_neighbours_and_are_infinite_at_one() -> None:
    assert threshold_for_rate("mean_margin", [0.1, 0.3, 0.7, 0.9], 0.5) == pytest.approx(0.5)
    assert threshold_for_rate("mean_margin", [0.1, 0.9], 1.0) == math.inf
    assert threshold_for_rate("mean_entropy", [0.1, 0.9], 1.0) == -math.inf


def test_tied_scores_escalate_together_so_the_realized_rate_can_fall_short() -> None:
    values = [1.0] * 9 + [0.2]
    threshold = threshold_for_rate("mean_margin", values, 0.5)
    assert sum(escalates("mean_margin", v, threshold) for v in values) == 1


@pytest.mark.parametrize(
    ("budget", "rate"),
    [("0.001", 0.0), ("0.0005", 0.0), ("0.006", 0.25), ("0.021", 1.0), ("5", 1.0)],
)
def test_the_cascade_formula_turns_a_budget_into_a_rate(budget: str, rate: float) -> None:
    # c_s = 0.001, c_l = 0.02: p = min(max((B - c_s) / c_l, 0), 1).
    assert rate_for_budget(Decimal(budget), Decimal("0.001"), Decimal("0.02")) == pytest.approx(rate)


def test_the_online_level_pays_back_what_it_owes() -> None:
    assert online_level(0.25, 100, 25, 20) == 0.25  # on target
    assert online_level(0.25, 100, 15, 20) == pytest.approx(0.75)  # 10 owed over 20 jobs
    assert online_level(0.25, 100, 35, 20) == 0.0  # 10 too many: escalate nothing for a while
    assert online_level(0.25, 0, 0, 20) == 0.25
