"""`recap tune` on a tiny random-weight causal model: the loss falls, a killed run resumes exactly, the manifest
names what was trained from what."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from inference.backends.hf import TextModel
from recap.call_cache import file_sha256
from recap.testmodels import Shape, init_test_models
from recap.tuning.data import Example, write
from recap.tuning.run import TuneJob, tune
from recap.tuning.train import TuneConfig, encode, train, trainable
from shared.config import Settings
from shared.prompts import TOPICS

pytestmark = pytest.mark.timeout(300)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, large = init_test_models(tmp_path_factory.mktemp("models"), Shape.TINY)
    return large


def _examples() -> list[Example]:
    facts = [("Ann", "ship friday"), ("Bo", "test monday"), ("Cy", "budget ten"), ("Dee", "call the client")]
    return [
        Example(f"ex{i}", "qmsum_query", f"TR{i}", "0" * 64, "chunk", f"{who}: we {what}.", f"{who}: {what}.")
        for i, (who, what) in enumerate(facts)
    ]


def _rows(folder: Path) -> tuple[TextModel, list]:
    model = TextModel.load("tiny", source=str(folder), device="cpu")
    rows, too_long = encode(_examples(), model, TOPICS, max_tokens=512)
    assert too_long == 0
    return model, rows


def _run(folder: Path, ckpt: Path, config: TuneConfig, kill_at: int | None = None):
    torch.manual_seed(0)  # the same LoRA initialisation every time
    model, rows = _rows(folder)
    module = trainable(model.model, config)

    def step(state, _steps):
        if state.step == kill_at:
            raise Killed

    state = train(
        module, rows, config, pad=model.tokenizer.pad_token_id, device="cpu", checkpoint=ckpt, on_step=step
    )
    return state, {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


CONFIG = TuneConfig(
    method="lora", max_steps=16, learning_rate=5e-2, grad_accum=2, checkpoint_every=4, warmup_steps=0
)
FULL = replace(CONFIG, method="full", learning_rate=3e-3)


# Random weights are hard to steer through low-rank adapters alone (the loss starts at ln(384): uniform bytes);
# the whole model learns the four targets fast.
@pytest.mark.parametrize(("config", "kept"), [(CONFIG, 0.97), (FULL, 0.7)], ids=["lora", "full"])
def test_the_loss_on_the_targets_falls(causal: Path, tmp_path: Path, config: TuneConfig, kept: float) -> None:
    state, _ = _run(causal, tmp_path / "ckpt", config)
    assert state.step == 16
    assert sum(state.losses[-3:]) / 3 < kept * sum(state.losses[:3]) / 3


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_where_an_unbroken_run_ends(
    causal: Path, tmp_path: Path
) -> None:
    whole, whole_weights = _run(causal, tmp_path / "whole", CONFIG)
    with pytest.raises(Killed):
        _run(causal, tmp_path / "broken", CONFIG, kill_at=6)  # the last checkpoint is step 4's
    assert json.loads((tmp_path / "broken/state.json").read_text())["step"] == 4
    resumed, resumed_weights = _run(causal, tmp_path / "broken", CONFIG)
    assert resumed.step == 16
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-4)
    for name, weight in whole_weights.items():
        torch.testing.assert_close(resumed_weights[name], weight, rtol=1e-4, atol=1e-6)


def test_only_the_target_is_learned_from(causal: Path) -> None:
    model, rows = _rows(causal)
    for row, example in zip(rows, _examples(), strict=True):
        learned = [t for t, label in zip(row.input_ids, row.labels, strict=True) if label != -100]
        assert model.tokenizer.decode(learned[:-1]) == example.target  # the target, then the end token
        assert learned[-1] == model.eos_token_ids[0]


def test_tune_writes_the_adapter_and_a_manifest_that_names_its_inputs(causal: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    write(_examples(), data)
    job = TuneJob("t1", str(causal), data, tmp_path / "tuned")
    # The small tier names another model: the examples are shown in the style of the base being trained,
    # the one `tuned:t1` will be prompted in.
    settings = Settings(small_model="bundled:qwen2.5-coder-1.5b-instruct", prompts={str(causal): "topics"})
    from rich.console import Console

    manifest = tune(job, TuneConfig(max_steps=3, checkpoint_every=2), settings, Console(quiet=True))
    folder = tmp_path / "tuned/t1"
    saved = json.loads((folder / "manifest.json").read_text())
    assert saved == manifest
    assert saved["steps"] == 3 and len(saved["loss_curve"]) == 3
    assert saved["prompt_style"] == "topics"
    assert saved["data_sha256"] == file_sha256(data)
    assert saved["examples"]["ids"] == ["ex0", "ex1", "ex2", "ex3"]
    assert saved["settings"]["seed"] == 0 and saved["settings"]["method"] == "lora"
    assert saved["files"]["adapter_model.safetensors"] == file_sha256(
        folder / "adapter/adapter_model.safetensors"
    )
