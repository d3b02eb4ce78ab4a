"""`tuned:<name>` model specs: a base model and a trained adapter, described by the manifest `recap tune` writes.

Looked up in the tuned models folder (`<models dir>/tuned/<name>/`, what `make tune` makes) and then in the
repository's own `models/<name>/` (the adapter committed for every fresh clone). Pure Python: reads JSON only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PREFIX = "tuned:"
REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


class TunedModelMissing(LookupError):
    """No manifest for a `tuned:` name, or one that names no loadable file; the message says what to run."""


@dataclass(frozen=True)
class TunedModel:
    name: str
    folder: Path
    method: str  # lora: an adapter over the base | full: a whole model of its own
    base: str  # the base model's spec (bundled:..., a folder, a .gguf file)
    gguf: Path | None  # llama.cpp's file: the adapter (lora) or the model (full)
    adapter: Path | None  # transformers' folder: the peft adapter (lora) or the model (full)


def folder_of(spec: str, models_dir: Path) -> Path:
    name = spec.removeprefix(PREFIX)
    for root in (models_dir / "tuned", REPO_MODELS):
        if (root / name / "manifest.json").is_file():
            return root / name
    raise TunedModelMissing(
        f"no tuned model {name!r} in {models_dir / 'tuned'} or {REPO_MODELS}: `make tune` (or `recap tune --name "
        f"{name}`) trains it"
    )


def find(spec: str, models_dir: Path) -> TunedModel:
    folder = folder_of(spec, models_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    gguf, result = folder / manifest["gguf"], folder / manifest["result"]
    return TunedModel(
        spec.removeprefix(PREFIX),
        folder,
        manifest["method"],
        manifest["base"],
        gguf if gguf.is_file() else None,
        result if result.is_dir() else None,
    )


def base_of(spec: str, models_dir: Path) -> str:
    """The model a spec's per-model defaults (prompt style, decoding rules) come from: a tuned model's base."""
    if not spec.startswith(PREFIX):
        return spec
    try:
        return find(spec, models_dir).base
    except (TunedModelMissing, OSError, ValueError, KeyError):
        return spec  # loading it will say what is missing
