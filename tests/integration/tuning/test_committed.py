"""The adapter every fresh clone ships (models/smollm2-meetings, made by `make tune`): the file its manifest
names, trained on the bundled base the manifest names, small enough to commit, and applied by llama.cpp."""

import json
from pathlib import Path

import pytest

from inference.backends.load import load, spec_for
from recap.call_cache import file_sha256
from recap.demo import BUNDLED_SMALL
from shared import tuned
from shared.config import get_settings
from shared.states import Tier

pytestmark = pytest.mark.timeout(300)
FOLDER = tuned.REPO_MODELS / BUNDLED_SMALL.removeprefix(tuned.PREFIX)
MEETING = (
    "Ann: Let's settle the remote control's case. I think rubber is too expensive.\n"
    "Bo: Plastic then, and we keep the yellow colour the marketing team asked for.\n"
    "Ann: Agreed. Bo will send the drawings to the engineers by Friday."
)


def test_the_committed_adapter_is_the_file_its_manifest_names(smollm2: Path) -> None:
    manifest = json.loads((FOLDER / "manifest.json").read_text())
    adapter = FOLDER / manifest["gguf"]
    assert manifest["method"] == "lora" and manifest["base"] == "bundled:smollm2-135m-instruct"
    assert file_sha256(adapter) == manifest["gguf_sha256"]
    assert adapter.stat().st_size <= 10_000_000
    assert manifest["base_sha256"] == file_sha256(smollm2)  # trained against exactly the weights it runs on
    assert manifest["loss_curve"][-1] < manifest["loss_curve"][0]
    assert not {path.name for path in FOLDER.iterdir()} - {"manifest.json", manifest["gguf"]}


def _summary(configure, model: str) -> str:
    configure(RECAP_SMALL_MODEL=model, RECAP_SMALL_BACKEND="llamacpp")
    engine = load(spec_for(get_settings(), Tier.SMALL))
    style = get_settings().tier(Tier.SMALL).prompts
    prompt = engine.prompt(style.chunk, MEETING, instruction_last=style.instruction_last)
    return engine.generate([prompt], max_new_tokens=48)[0].text


def test_llama_cpp_applies_it_to_the_bundled_base(configure, smollm2: Path) -> None:
    configure(RECAP_MODELS_DIR=str(smollm2.parent))
    tuned_text = _summary(configure, BUNDLED_SMALL)
    assert tuned_text.strip() and tuned_text != _summary(configure, "bundled:smollm2-135m-instruct")
