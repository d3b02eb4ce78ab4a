import math

import pytest
import torch

from shared.inference.margins import generated_mask, token_margins
from shared.inference.textmodel import TextModel
from shared.scores import aggregate

EOS, PAD = 1, 0


def logits_for(*probs: float) -> list[float]:
    return [math.log(p) for p in probs]


def test_margins_match_a_hand_computed_example() -> None:
    # Two rows, three steps. Row 0 emits 5, 6, EOS; row 1 emits EOS at step 0, then padding.
    step0 = torch.tensor([logits_for(0.5, 0.3, 0.2), logits_for(0.6, 0.3, 0.1)])
    step1 = torch.tensor([logits_for(0.9, 0.05, 0.05), logits_for(0.4, 0.4, 0.2)])
    step2 = torch.tensor([logits_for(0.25, 0.7, 0.05), logits_for(0.1, 0.1, 0.8)])
    tokens = torch.tensor([[5, 6, EOS], [EOS, PAD, PAD]])

    margins = token_margins([step0, step1, step2], tokens, [EOS])

    assert margins[0] == pytest.approx([0.5 - 0.3, 0.9 - 0.05, 0.7 - 0.25], abs=1e-6)
    assert margins[1] == pytest.approx([0.6 - 0.3], abs=1e-6)  # nothing after the row's EOS counts


def test_mask_keeps_steps_through_the_first_eos_only() -> None:
    tokens = torch.tensor([[4, EOS, 7, EOS], [4, 4, 4, 4], [EOS, 3, 3, 3]])
    assert generated_mask(tokens, [EOS]).tolist() == [
        [True, True, False, False],
        [True, True, True, True],
        [True, False, False, False],
    ]
    # Models with several end tokens (Qwen has two): any of them ends the row.
    assert generated_mask(torch.tensor([[4, 9, 1]]), [1, 9]).tolist() == [[True, True, False]]


def test_aggregations_of_a_hand_computed_example() -> None:
    scores = aggregate([[0.2, 0.85, 0.5]])
    assert scores["first_margin"] == pytest.approx(0.2)
    assert scores["mean_margin"] == pytest.approx(1.55 / 3)
    assert scores["min_margin"] == pytest.approx(0.2)
    # 10th percentile, linear interpolation: sorted [0.2, 0.5, 0.85], position 0.2 -> 0.2 + 0.2 * 0.3.
    assert scores["p10_margin"] == pytest.approx(0.26)
    assert aggregate([]) == aggregate([[]]) == dict.fromkeys(scores, 0.0)


def test_aggregations_pool_every_call_of_a_chunked_job() -> None:
    scores = aggregate([[0.2, 0.9], [], [0.6]])  # two chunk calls and an empty one
    assert scores["first_margin"] == pytest.approx((0.2 + 0.6) / 2)  # averaged over calls
    assert scores["mean_margin"] == pytest.approx((0.2 + 0.9 + 0.6) / 3)  # over every token
    assert scores["min_margin"] == pytest.approx(0.2)
    assert scores["p10_margin"] == pytest.approx(0.2 + 0.2 * 0.4)


def test_batched_and_unbatched_generation_give_the_same_margins(test_models) -> None:
    small, _ = test_models
    model = TextModel.load(str(small), device="cpu")
    prompts = [
        model.prompt("Summarize the following meeting transcript.", body)
        for body in (
            "Ann: ship it.",
            "Bo: we need two more weeks for QA and a security review, " * 6,
            "Cy: ok",
        )
    ]
    batched = model.generate(prompts, max_new_tokens=12, min_new_tokens=4, scores=True)
    single = [model.generate([p], max_new_tokens=12, min_new_tokens=4, scores=True)[0] for p in prompts]

    assert len({len(p) for p in prompts}) == 3  # different lengths, so the batch really pads
    for b, s in zip(batched, single, strict=True):
        assert b.text == s.text
        assert (b.input_tokens, b.output_tokens) == (s.input_tokens, s.output_tokens)
        assert b.margins == pytest.approx(s.margins, abs=1e-5)
        assert len(b.margins) == b.output_tokens >= 4
