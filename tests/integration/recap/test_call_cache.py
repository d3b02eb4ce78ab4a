"""The evaluation's call cache around a real (tiny, random-weight) model: a second run makes no model call and
gives back exactly what the first got, a change of model, prompt or settings is a miss, a torn file is a miss."""

import json
from dataclasses import asdict

import pytest

from inference.backends.hf import TextModel
from inference.backends.load import spec_for
from inference.longform import Summarizer
from recap.call_cache import CachedBackend, CallCache, identity
from shared.config import Settings
from shared.model_kinds import GenerationOptions
from shared.prompts import SummaryLength

PROMPTS = ["summarize: Ann proposes a red case. Bob agrees.", "summarize: the budget is twelve euros."]


class Counting:
    """The real model, counting the prompts it was asked to generate for."""

    def __init__(self, model: TextModel) -> None:
        self.model, self.prompts = model, 0
        self.name, self.device, self.kind = model.name, model.device, model.kind

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def generate(self, prompts, **kwargs):
        self.prompts += len(prompts)
        return self.model.generate(prompts, **kwargs)


@pytest.fixture(scope="module")
def small(test_models) -> TextModel:
    return TextModel.load(str(test_models[0]), device="cpu")


def cached(small, folder, model=None) -> tuple[CachedBackend, Counting]:
    counting = Counting(small)
    return CachedBackend(counting, CallCache(folder), model or {"model": "tiny", "options": {}}), counting


def test_a_second_run_replays_every_call_without_the_model(small, tmp_path) -> None:
    first, model = cached(small, tmp_path)
    fresh = first.generate(PROMPTS, max_new_tokens=8, scores=True)
    assert model.prompts == 2 and (first.cache.hits, first.cache.misses) == (0, 2)
    assert all(g.seconds is not None and g.seconds > 0 for g in fresh)

    second, model = cached(small, tmp_path)
    replayed = second.generate(PROMPTS, max_new_tokens=8, scores=True)
    assert model.prompts == 0 and (second.cache.hits, second.cache.misses) == (2, 0)
    # Text, token counts, every per-token statistic and the seconds the call cost: all as first generated.
    assert [asdict(g) for g in replayed] == [asdict(g) for g in fresh]


def test_model_prompt_and_settings_are_all_in_the_key(small, tmp_path) -> None:
    base, _ = cached(small, tmp_path)
    base.generate(PROMPTS[:1], max_new_tokens=8, scores=True)
    changes = [
        (cached(small, tmp_path, {"model": "other", "options": {}})[0], PROMPTS[0], 8, True),
        (
            cached(small, tmp_path, {"model": "tiny", "options": {"repetition_penalty": 1.2}})[0],
            PROMPTS[0],
            8,
            True,
        ),
        (base, PROMPTS[0] + " ", 8, True),  # the prompt
        (base, PROMPTS[0], 9, True),  # the answer's length
        (base, PROMPTS[0], 8, False),  # with or without statistics
    ]
    for backend, prompt, new_tokens, scores in changes:
        misses = backend.cache.misses
        backend.generate([prompt], max_new_tokens=new_tokens, scores=scores)
        assert backend.cache.misses == misses + 1, (prompt, new_tokens, scores)


def test_a_torn_cache_file_is_a_miss_and_is_rewritten(small, tmp_path) -> None:
    first, _ = cached(small, tmp_path)
    [fresh] = first.generate(PROMPTS[:1], max_new_tokens=8)
    [path] = tmp_path.rglob("*.json")
    path.write_text(path.read_text()[:20])  # a crash mid-write (the real writer replaces in one step)
    again, model = cached(small, tmp_path)
    [redone] = again.generate(PROMPTS[:1], max_new_tokens=8)
    assert model.prompts == 1 and redone.text == fresh.text
    assert again.generate(PROMPTS[:1], max_new_tokens=8)[0].text == fresh.text and model.prompts == 1


def test_a_long_meeting_resumes_from_the_calls_it_finished(small, tmp_path, dev_meetings) -> None:
    settings = Settings(small_max_input_tokens=256, chunk_summary_tokens=8, summary_tokens_medium=12)
    turns = [(t["speaker"], t["text"]) for t in dev_meetings[0]["turns"] if t["text"].strip()][:60]
    first, model = cached(small, tmp_path)
    [done] = Summarizer(first, settings.tier("small")).summarize([(turns, SummaryLength.MEDIUM)], scores=True)
    calls = model.prompts
    assert done.chunks > 1 and calls == done.calls
    # Cut off: the final merge's file is lost; the rerun asks the model for that one call only.
    newest = max(tmp_path.rglob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    newest.unlink()
    kept = sum(json.loads(p.read_text())["seconds"] for p in tmp_path.rglob("*.json"))
    again, model = cached(small, tmp_path)
    [redone] = Summarizer(again, settings.tier("small")).summarize(
        [(turns, SummaryLength.MEDIUM)], scores=True
    )
    assert model.prompts == 1 and redone.text == done.text
    # The replayed calls cost what they cost when made (the one new call adds its own, however long it took).
    assert kept > 0 and redone.seconds >= kept


def test_identity_names_the_weights_and_the_decoding_settings(test_models, configure) -> None:
    configure(RECAP_SMALL_MODEL=str(test_models[0]), RECAP_DEVICE="cpu")
    settings = Settings()
    spec = spec_for(settings, "small")
    model = identity(spec)
    assert model["model"] == str(test_models[0]) and len(model["weights_sha256"]) == 64
    assert model["options"] == GenerationOptions().model_dump(mode="json")
    (test_models[0] / "extra.txt").write_text("a changed folder is another model")
    try:
        assert identity(spec)["weights_sha256"] != model["weights_sha256"]
    finally:
        (test_models[0] / "extra.txt").unlink()
