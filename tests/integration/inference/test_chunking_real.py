"""Chunk plans made with a real model's tokenizer fit the budget they were made for."""

from inference.chunking import pack, units_of


def test_real_tokenizer_chunks_fit_their_budget(test_models, dev_meetings) -> None:
    from inference.backends.hf import TextModel

    model = TextModel.load(str(test_models[0]), device="cpu")
    meeting = max(dev_meetings, key=lambda m: m["n_words"])
    turns = [(t["speaker"], t["text"]) for t in meeting["turns"] if t["text"].strip()]
    turns.append(("Ann", "no full stop here " * 400))  # forces a cut by tokens
    units = units_of(turns, budget=256, tokenizer=model)
    result = pack(units, budget=256, overlap=32, max_chunks=10_000)

    real = model.count([c.text for c in result.chunks])
    assert len(result.chunks) > 10
    assert max(real) <= 256
    assert all(r <= c.tokens for r, c in zip(real, result.chunks, strict=True))  # the plan's bound holds
    assert result.truncation_ratio == 0
