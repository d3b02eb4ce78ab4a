"""A job's token statistics do not depend on its batch-mates (a real random-weight model)."""

import pytest

from inference.backends.hf import TextModel

EOS, PAD = 1, 0


def test_batched_and_unbatched_generation_give_the_same_statistics(test_models) -> None:
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
        assert b.stats.margins == pytest.approx(s.stats.margins, abs=1e-5)
        assert b.stats.entropies == pytest.approx(s.stats.entropies, abs=1e-4)
        assert b.stats.logprobs == pytest.approx(s.stats.logprobs, abs=1e-4)
        assert len(b.stats.margins) == len(b.stats.entropies) == b.output_tokens >= 4
        assert all(lp <= 0 for lp in b.stats.logprobs) and all(e >= 0 for e in b.stats.entropies)
