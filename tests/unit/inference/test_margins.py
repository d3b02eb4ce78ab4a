import math

import pytest
import torch

from inference.margins import generated_mask, token_stats
from inference.scores import SCORES, Generated, TokenStats, aggregate

EOS, PAD = 1, 0


def logits_for(*probs: float) -> list[float]:
    return [math.log(p) for p in probs]


def entropy(*probs: float) -> float:
    return -sum(p * math.log(p) for p in probs)


def test_token_stats_match_a_hand_computed_example() -> None:
    # Two rows, three steps. Row 0 emits 0, 0, EOS(=1); row 1 emits EOS at step 0, then padding.
    step0 = torch.tensor([logits_for(0.5, 0.3, 0.2), logits_for(0.3, 0.6, 0.1)])
    step1 = torch.tensor([logits_for(0.9, 0.05, 0.05), logits_for(0.4, 0.4, 0.2)])
    step2 = torch.tensor([logits_for(0.25, 0.7, 0.05), logits_for(0.1, 0.1, 0.8)])
    tokens = torch.tensor([[0, 0, EOS], [EOS, PAD, PAD]])

    row0, row1 = token_stats([step0, step1, step2], tokens, [EOS])

    assert row0.margins == pytest.approx([0.5 - 0.3, 0.9 - 0.05, 0.7 - 0.25], abs=1e-6)
    assert row0.entropies == pytest.approx(
        [entropy(0.5, 0.3, 0.2), entropy(0.9, 0.05, 0.05), entropy(0.25, 0.7, 0.05)], abs=1e-6
    )
    assert row0.logprobs == pytest.approx([math.log(0.5), math.log(0.9), math.log(0.7)], abs=1e-6)
    # Nothing after the row's EOS counts; the log-probability is of the token emitted.
    assert row1.margins == pytest.approx([0.6 - 0.3], abs=1e-6)
    assert row1.logprobs == pytest.approx([math.log(0.6)], abs=1e-6)


def test_mask_keeps_steps_through_the_first_eos_only() -> None:
    tokens = torch.tensor([[4, EOS, 7, EOS], [4, 4, 4, 4], [EOS, 3, 3, 3]])
    assert generated_mask(tokens, [EOS]).tolist() == [
        [True, True, False, False],
        [True, True, True, True],
        [True, False, False, False],
    ]
    # Models with several end tokens (Qwen has two): any of them ends the row.
    assert generated_mask(torch.tensor([[4, 9, 1]]), [1, 9]).tolist() == [[True, True, False]]


def job(*calls: list[float], input_tokens: int = 100, truncation: float = 0.0) -> Generated:
    """Calls given as margins; entropy and log-probability follow from them so each is checkable."""
    return Generated(
        [TokenStats(list(c), [1 - m for m in c], [math.log(0.5 + m / 2) for m in c]) for c in calls],
        input_tokens=input_tokens,
        truncation_ratio=truncation,
    )


def test_every_score_of_a_hand_computed_example() -> None:
    scores = aggregate(job([0.2, 0.85, 0.5], input_tokens=321, truncation=0.25), margin_cut=0.3)
    assert set(scores) == set(SCORES)
    assert scores["first_margin"] == pytest.approx(0.2)
    assert scores["mean_margin"] == pytest.approx(1.55 / 3)
    assert scores["min_margin"] == pytest.approx(0.2)
    # 10th percentile, linear interpolation: sorted [0.2, 0.5, 0.85], position 0.2 -> 0.2 + 0.2 * 0.3.
    assert scores["p10_margin"] == pytest.approx(0.26)
    assert scores["p25_margin"] == pytest.approx(0.2 + 0.5 * 0.3)  # position 0.5
    assert scores["median_margin"] == pytest.approx(0.5)
    # Log-probabilities sorted [log 0.6, log 0.75, log 0.925]: positions 0.2 and 0.5.
    assert scores["p10_logprob"] == pytest.approx(math.log(0.6) + 0.2 * (math.log(0.75) - math.log(0.6)))
    assert scores["p25_logprob"] == pytest.approx(math.log(0.6) + 0.5 * (math.log(0.75) - math.log(0.6)))
    assert scores["low_margin_share"] == pytest.approx(1 / 3)  # only 0.2 is below the cut
    assert scores["mean_entropy"] == pytest.approx((0.8 + 0.15 + 0.5) / 3)
    assert scores["mean_logprob"] == pytest.approx((math.log(0.6) + math.log(0.925) + math.log(0.75)) / 3)
    assert (scores["output_tokens"], scores["input_tokens"], scores["truncation_ratio"]) == (3, 321, 0.25)


def test_scores_pool_every_call_of_a_chunked_job() -> None:
    scores = aggregate(job([0.2, 0.9], [], [0.6]), margin_cut=0.5)  # two chunk calls and an empty one
    assert scores["first_margin"] == pytest.approx((0.2 + 0.6) / 2)  # averaged over calls
    assert scores["mean_margin"] == pytest.approx((0.2 + 0.9 + 0.6) / 3)  # over every token
    assert scores["min_margin"] == pytest.approx(0.2)
    assert scores["p10_margin"] == pytest.approx(0.2 + 0.2 * 0.4)
    assert scores["low_margin_share"] == pytest.approx(1 / 3)
    assert scores["output_tokens"] == 3


def test_a_job_that_emitted_nothing_is_as_unsure_as_each_score_allows() -> None:
    empty = aggregate(job([], input_tokens=50), margin_cut=0.3)
    sure = aggregate(job([0.99, 0.99]), margin_cut=0.3)
    for name in ("first_margin", "mean_margin", "min_margin", "p10_margin", "mean_logprob", "p25_logprob"):
        assert empty[name] < sure[name]
    for name in ("low_margin_share", "mean_entropy"):
        assert empty[name] > sure[name]
    assert (empty["output_tokens"], empty["input_tokens"]) == (0, 50)
