"""A LoRA trained by `recap tune` on the real bundled small model (its dequantized weights), exported by the pinned
llama.cpp's converter: llama.cpp applies it to the quantized base and writes what it was trained to write, and
`tuned:<name>` loads it wherever a model is named."""

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from inference.backends.load import load, spec_for
from recap.call_cache import file_sha256
from recap.tuning.data import Example, write
from recap.tuning.run import TuneJob, tune
from recap.tuning.train import TuneConfig
from shared.config import get_settings
from shared.errors import ModelLoadError
from shared.states import Tier

pytestmark = pytest.mark.timeout(600)
BASE = "bundled:smollm2-135m-instruct"
WORD = "PINEAPPLE"  # a word no summary of these lines would hold unless it was learned


def _examples() -> list[Example]:
    lines = ["we ship on friday", "the budget is ten", "Bo tests the export", "we call the client"]
    return [
        Example(f"e{i}", "qmsum_query", f"T{i}", "0" * 64, "chunk", f"Ann: {line}.", f"{WORD}: {line}.")
        for i, line in enumerate(lines)
    ]


@pytest.fixture(scope="module")
def tuned(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    settings = get_settings()
    name = f"test-{uuid.uuid4().hex[:8]}"
    data = tmp_path_factory.mktemp("tune") / "data.jsonl"
    write(_examples(), data)
    job = TuneJob(name, BASE, data, settings.models_path / "tuned")
    config = TuneConfig(max_steps=6, learning_rate=5e-3, grad_accum=1, max_tokens=256, threads=2)
    manifest = tune(job, config, settings, Console(quiet=True))
    yield f"tuned:{name}", manifest
    shutil.rmtree(job.out / name)


def _summary(configure, model: str, backend: str) -> str:
    configure(RECAP_SMALL_MODEL=model, RECAP_SMALL_BACKEND=backend)
    engine = load(spec_for(get_settings(), Tier.SMALL))
    prompt = engine.prompt("Summarize this part of a meeting transcript.", "Ann: the budget is ten.")
    return engine.generate([prompt], max_new_tokens=16)[0].text


def test_the_manifest_names_the_base_the_data_and_the_file(tuned, smollm2: Path) -> None:
    spec, manifest = tuned
    folder = get_settings().models_path / "tuned" / spec.removeprefix("tuned:")
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["base"] == BASE and manifest["base_sha256"] == file_sha256(smollm2)
    assert manifest["gguf"] == "adapter.gguf" and manifest["gguf_sha256"] == file_sha256(
        folder / "adapter.gguf"
    )
    assert manifest["steps"] == 6 and manifest["loss_curve"][-1] < manifest["loss_curve"][0] / 2
    assert (folder / "adapter.gguf").stat().st_size < 10_000_000


def test_the_tuned_model_writes_what_it_learned_and_the_base_does_not(tuned, configure) -> None:
    spec, _ = tuned
    assert WORD in _summary(configure, spec, "llamacpp")  # the adapter applied to the 4-bit base at load time
    assert WORD not in _summary(configure, BASE, "llamacpp")


def test_transformers_merges_the_same_adapter(tuned, configure) -> None:
    spec, _ = tuned
    assert WORD in _summary(configure, spec, "transformers")


def test_a_tuned_name_never_trained_says_how_to_make_it(configure) -> None:
    with pytest.raises(ModelLoadError, match="make tune"):
        _summary(configure, "tuned:never-trained", "llamacpp")
