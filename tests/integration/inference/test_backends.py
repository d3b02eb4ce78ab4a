"""Model backends: the shared decoding rules, scores from a server's log-probabilities, which engine runs what,
and the real SmolLM2 file through llama.cpp and through transformers."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from inference.backends.hf import AnswerPenalties
from inference.backends.openai_api import ApproxTokens, token_stats_from_logprobs
from inference.backends.processing import banned_ngram_tokens, cut_at_stop, process_numpy, stats_numpy
from inference.scores import Generated, TokenStats, aggregate
from shared.config import Settings
from shared.model_kinds import BackendKind, GenerationOptions, resolve_kind

WORDS = re.compile(r"[A-Za-z]{3,}")


def test_ngram_ban_names_the_tokens_that_would_repeat_an_ngram() -> None:
    # 5 6 7 ... 5 6: a 3-gram ban forbids 7 next (5 6 7 again); a 2-gram ban after "... 6" forbids 7 too.
    assert banned_ngram_tokens([5, 6, 7, 1, 5, 6], 3) == [7]
    assert banned_ngram_tokens([5, 6, 7, 1, 5, 6], 2) == [7]
    assert banned_ngram_tokens([5, 6, 7, 1, 5, 6], 4) == []
    assert sorted(banned_ngram_tokens([1, 2, 1, 3, 1], 2)) == [2, 3]
    assert banned_ngram_tokens([1, 2], 0) == []


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    logits = np.array([2.0, -1.0, 0.5, 3.0], dtype=np.float32)
    out = process_numpy(logits, [0, 1, 1], GenerationOptions(repetition_penalty=2.0))
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0]
    assert logits.tolist() == [2.0, -1.0, 0.5, 3.0]  # a copy: the engine's buffer is untouched


def test_torch_and_numpy_engines_apply_the_same_rules() -> None:
    rng = np.random.default_rng(0)
    options = GenerationOptions(repetition_penalty=1.3, no_repeat_ngram_size=2)
    logits = rng.normal(size=(2, 50)).astype(np.float32)
    # Generated ids start after a 3-token prompt, which the penalties must ignore.
    ids = torch.tensor([[9, 9, 9, 4, 7, 4], [1, 2, 3, 8, 8, 8]])
    processed = AnswerPenalties(3, options)(ids, torch.from_numpy(logits.copy()))  # type: ignore[arg-type]
    for row, generated in enumerate([[4, 7, 4], [8, 8, 8]]):
        expected = process_numpy(logits[row], generated, options)
        assert np.allclose(processed[row].numpy(), expected)
    assert (
        processed[0, 7] == -math.inf and processed[0, 9] == logits[0, 9]
    )  # 4 -> 7 banned; prompt id untouched


def test_stats_of_a_step_by_hand() -> None:
    # p = softmax([ln 6, ln 3, ln 1, -inf]) = [0.6, 0.3, 0.1, 0]: margin 0.3, entropy -sum p ln p.
    logits = np.array([math.log(6), math.log(3), 0.0, -math.inf], dtype=np.float32)
    margin, entropy, logprob = stats_numpy(logits, 1)
    assert margin == pytest.approx(0.3, abs=1e-6)
    assert entropy == pytest.approx(
        -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1)), abs=1e-6
    )
    assert logprob == pytest.approx(math.log(0.3), abs=1e-6)


def test_stop_strings_cut_the_answer() -> None:
    assert cut_at_stop("Summary: ok.\nUser: more", ("\nUser:",)) == ("Summary: ok.", True)
    assert cut_at_stop("fine", ("###",)) == ("fine", False)


def test_margins_from_a_servers_top_logprobs_by_hand() -> None:
    content = [
        {"token": "A", "logprob": math.log(0.7), "top_logprobs": [
            {"token": "B", "logprob": math.log(0.2)}, {"token": "A", "logprob": math.log(0.7)}]},
        {"token": ".", "logprob": math.log(0.5), "top_logprobs": [{"token": ".", "logprob": math.log(0.5)}]},
    ]  # fmt: skip
    stats = token_stats_from_logprobs(content)
    assert stats.margins == pytest.approx([0.5, 0.5])  # sorted before subtracting; a lone top: p1 - 0
    assert stats.logprobs == pytest.approx([math.log(0.7), math.log(0.5)])
    assert stats.entropies == []  # a server gives no whole distribution


def test_scores_a_backend_cannot_give_are_left_out() -> None:
    job = Generated([TokenStats(margins=[0.5, 0.25], logprobs=[-0.1, -0.2])])
    scores = aggregate(job, margin_cut=0.3)
    assert "mean_entropy" not in scores
    assert scores["mean_margin"] == pytest.approx(0.375) and scores["low_margin_share"] == 0.5
    empty = aggregate(Generated([TokenStats()]), margin_cut=0.3)  # nothing emitted: maximally unsure
    assert empty["mean_margin"] == 0.0 and empty["mean_entropy"] > 13


def test_which_engine_runs_which_model() -> None:
    gguf = "bundled:smollm2-135m-instruct"
    assert resolve_kind(gguf, "auto", base_url=None, device="cpu") is BackendKind.LLAMACPP
    assert resolve_kind(gguf, "auto", base_url=None, device="cuda") is BackendKind.TRANSFORMERS
    assert (
        resolve_kind("google/flan-t5-large", "auto", base_url=None, device="cpu") is BackendKind.TRANSFORMERS
    )
    assert resolve_kind("qwen", "auto", base_url="http://h/v1", device="cpu") is BackendKind.OPENAI
    assert resolve_kind("m.gguf", "transformers", base_url=None, device="cpu") is BackendKind.TRANSFORMERS


def test_the_api_key_is_a_secret() -> None:
    settings = Settings(small_base_url="http://h/v1", small_api_key="sk-do-not-print")
    assert "sk-do-not-print" not in repr(settings) and "sk-do-not-print" not in str(settings.model_dump())
    assert settings.tier("small").api_key == "sk-do-not-print"


def test_the_token_estimate_errs_on_the_long_side() -> None:
    text = "The budget committee approved the revised figures for next year. " * 20
    pieces = ApproxTokens().split(text, 50)
    assert "".join(pieces) == text and all(n <= 50 for n in ApproxTokens().count(pieces))


def test_byte_level_random_models_write_visible_noise(tmp_path) -> None:
    """With no real tokenizer the test models' noise must still decode to text: an empty summary is no result."""
    from inference.backends.hf import TextModel
    from recap.testmodels import Shape, init_test_models

    small, large = init_test_models(tmp_path, Shape.TINY, None)
    for folder in (small, large):
        model = TextModel.load(str(folder), device="cpu")
        for gen in model.generate([model.prompt("Summarize.", "Ann: we ship Friday.")], max_new_tokens=20):
            assert gen.text and gen.text.isprintable() and gen.output_tokens >= 16


def test_smollm2_through_llamacpp_writes_english_with_real_margins(smollm2_llamacpp) -> None:
    model = smollm2_llamacpp
    prompt = model.prompt(
        "Summarize the following meeting transcript.", "Ann: we ship on Friday.\nBo: only if QA passes."
    )
    assert prompt.startswith("<|im_start|>") and prompt.endswith(
        "<|im_start|>assistant\n"
    )  # its chat template
    one = model.generate([prompt], max_new_tokens=40, scores=True)[0]
    assert len(WORDS.findall(one.text)) >= 5, one.text
    assert len(one.stats.margins) == one.output_tokens == len(one.stats.entropies)
    assert all(0 <= m <= 1 for m in one.stats.margins) and len(set(one.stats.margins)) > 5
    assert one.input_tokens == len(model.llm.tokenize(prompt.encode(), add_bos=False, special=True))
    # In a batch, a prompt gets exactly what it gets alone.
    both = model.generate([prompt, model.prompt("Summarize.", "Cy: lunch?")], max_new_tokens=40, scores=True)
    assert both[0].text == one.text and both[0].stats.margins == pytest.approx(one.stats.margins, abs=1e-6)


def test_the_same_gguf_file_in_transformers_agrees_with_llamacpp(smollm2, smollm2_llamacpp) -> None:
    """transformers dequantizes the file to fp32, llama.cpp computes on the 4-bit blocks: different engines, so
    the texts may part after a while, but the first tokens agree and their margins within 0.1."""
    from inference.backends.hf import TextModel

    hf = TextModel.load("bundled:smollm2-135m-instruct", source=str(smollm2), device="cpu")
    body = "Maya: release Thursday without SSO?\nLena: agreed, it is behind a flag.\nOmar: fine, if the invoice fix ships."
    prompts = [hf.prompt("Summarize the following meeting transcript.", body)]
    assert prompts[0] == smollm2_llamacpp.prompt("Summarize the following meeting transcript.", body)
    # A style that puts the instruction last: the same message, in the other order, in both engines' template.
    last = hf.prompt("Summarize.", body, instruction_last=True)
    assert last == smollm2_llamacpp.prompt("Summarize.", body, instruction_last=True)
    assert f"{body}\n\nSummarize.<|im_end|>" in last and last.index("Maya") < last.index("Summarize.")
    a = hf.generate(prompts, max_new_tokens=8, scores=True)[0]
    b = smollm2_llamacpp.generate(prompts, max_new_tokens=8, scores=True)[0]
    assert a.input_tokens == b.input_tokens
    assert a.text.split()[:3] == b.text.split()[:3], (a.text, b.text)
    # llama.cpp also rounds activations to 8 bits for its 4-bit matmuls: measured gaps up to 0.07.
    assert a.stats.margins[:3] == pytest.approx(b.stats.margins[:3], abs=0.1)
