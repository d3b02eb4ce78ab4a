import math
from decimal import Decimal

import pytest

from inference.scores import SCORES
from services.gate.policies import (
    POLICIES,
    check,
    decide,
    escalates,
    online_level,
    rate_for_budget,
    threshold_for_rate,
)
from shared.config import Settings
from shared.errors import JobError
from shared.states import Decision

SCORES_OF_A_JOB = {"first_margin": 0.9, "mean_margin": 0.4, "min_margin": 0.01, "mean_entropy": 2.0}


@pytest.mark.parametrize(
    ("score_name", "threshold", "route"),
    [
        ("mean_margin", 0.5, Decision.ESCALATE),
        ("mean_margin", 0.4, Decision.ACCEPT),  # at the threshold: confident enough
        ("first_margin", 0.5, Decision.ACCEPT),
        ("min_margin", 0.0, Decision.ACCEPT),  # threshold 0 never escalates a margin
        ("first_margin", 1.01, Decision.ESCALATE),  # above any margin: always escalates
        ("mean_entropy", 1.5, Decision.ESCALATE),  # entropy: high is unsure
        ("mean_entropy", 2.0, Decision.ACCEPT),
        ("mean_entropy", 3.0, Decision.ACCEPT),
    ],
)
def test_the_unsure_side_of_the_threshold_escalates(
    score_name: str, threshold: float, route: Decision
) -> None:
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
    margins = {"first_margin", "mean_margin", "min_margin", "p10_margin", "p25_margin", "median_margin"}
    assert low == margins | {"mean_logprob", "p10_logprob", "p25_logprob"}


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


def test_the_gate_refuses_a_score_its_small_backend_cannot_give() -> None:
    with pytest.raises(ValueError, match="mean_entropy needs per-token entropies.*openai.*mean_margin"):
        check(Settings(_env_file=None, small_base_url="http://127.0.0.1:1/v1", gate_score="mean_entropy"))
    check(Settings(_env_file=None, small_base_url="http://127.0.0.1:1/v1", gate_score="mean_logprob"))
    check(Settings(_env_file=None, gate_score="mean_entropy"))  # in-process: every score


def test_an_unknown_gate_score_or_policy_is_refused_at_startup(monkeypatch, tmp_path) -> None:
    with pytest.raises(ValueError, match="RECAP_GATE_SCORE='vibes'.*first_margin"):
        check(Settings(_env_file=None, gate_score="vibes"))
    path = tmp_path / "gate.json"
    path.write_text('{"gate_policy": "sometimes"}')  # a broken gate file: the workers and `recap up` refuse
    monkeypatch.setenv("RECAP_GATE_FILE", str(path))
    with pytest.raises(
        ValueError, match="RECAP_GATE_POLICY='sometimes'.*threshold, target_rate, budget, online"
    ):
        check(Settings(_env_file=None))


def test_each_policy_is_registered_under_the_name_it_records() -> None:
    assert set(POLICIES) == {"threshold", "target_rate", "budget", "online"}
    for name, cls in POLICIES.items():
        outcome = cls().decide({"mean_margin": 0.1}, Settings(_env_file=None, gate_policy=name), list)
        assert outcome.policy == name and outcome.route is Decision.ESCALATE  # 0.1 < the default 0.35
