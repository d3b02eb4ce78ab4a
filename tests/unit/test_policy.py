import pytest

from services.gate.policy import Route, decide
from shared.errors import JobError

SCORES = {"first_margin": 0.9, "mean_margin": 0.4, "min_margin": 0.01, "p10_margin": 0.05}


@pytest.mark.parametrize(
    ("score_name", "threshold", "route"),
    [
        ("mean_margin", 0.5, Route.ESCALATE),
        ("mean_margin", 0.4, Route.ACCEPT),  # at the threshold: confident enough
        ("first_margin", 0.5, Route.ACCEPT),
        ("min_margin", 0.0, Route.ACCEPT),  # threshold 0 never escalates
        ("first_margin", 1.01, Route.ESCALATE),  # above any margin: always escalates
    ],
)
def test_low_scores_escalate(score_name: str, threshold: float, route: Route) -> None:
    outcome = decide(SCORES, score_name=score_name, threshold=threshold)
    assert outcome.route is route
    assert outcome.score == SCORES[score_name]
    assert outcome.threshold == threshold
    assert score_name in outcome.reason


def test_a_missing_score_is_a_coded_error() -> None:
    with pytest.raises(JobError) as err:
        decide({"first_margin": 0.3}, score_name="mean_margin", threshold=0.5)
    assert err.value.code == "gate_score_missing"
