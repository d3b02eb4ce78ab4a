"""One `recap tune` run: load the base, encode the examples, train with a progress bar, save and describe it.

The result goes to `<out>/<name>/`: the adapter (or model), the last checkpoint (a rerun resumes from it) and
`manifest.json`, which says what was trained from what, so the artifact can be traced and reproduced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from inference.backends.hf import TextModel
from inference.backends.load import source_of
from recap.call_cache import file_sha256
from recap.tuning.data import read
from recap.tuning.export import llama_sources, lora_to_gguf, model_to_gguf
from recap.tuning.train import State, TuneConfig, encode, save_result, train, trainable
from shared.config import Settings
from shared.prompts import PROMPTS


@dataclass(frozen=True)
class TuneJob:
    name: str
    base: str  # a model spec: bundled:..., a folder or a .gguf file
    data: Path  # `recap tune data`'s JSONL
    out: Path  # the tuned models' folder (var/models/tuned)
    device: str = "cpu"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]tune[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
    )


def tune(job: TuneJob, config: TuneConfig, settings: Settings, console: Console) -> dict[str, Any]:
    """Trains (resuming where a previous run of the same name stopped); returns the manifest it wrote."""
    folder = job.out / job.name
    source = source_of(job.base, settings.models_path)
    model = TextModel.load(job.base, source=source, device=job.device, threads=config.threads)
    examples = read(job.data)
    style = settings.prompt_style(job.base)  # the style `tuned:<name>` will be shown in: its base's
    rows, too_long = encode(examples, model, PROMPTS[style], config.max_tokens)
    console.print(f"{len(rows)} examples ({too_long} over {config.max_tokens} tokens left out)")
    module = trainable(model.model, config)
    with _progress(console) as bar:
        task = bar.add_task("tune", total=None, loss="-")

        def shown(state: State, steps: int) -> None:
            bar.update(task, completed=state.step, total=steps, loss=f"{state.losses[-1]:.3f}")

        state = train(
            module,
            rows,
            config,
            pad=int(model.tokenizer.pad_token_id),
            device=model.device,
            checkpoint=folder / "checkpoint",
            on_step=shown,
        )
    result = save_result(module, folder)
    gguf = export(model, result, folder, settings.var_dir)
    trained = Trained(state, len(rows), too_long, [e.id for e in examples], style, result, gguf)
    manifest = describe(job, config, trained, source=source)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export(model: TextModel, result: Path, folder: Path, var_dir: Path) -> Path:
    """The result as the GGUF file llama.cpp loads: an adapter for the base, or the whole tuned model."""
    sources = llama_sources(var_dir)
    if result.name == "model":
        model.tokenizer.save_pretrained(result)
        return model_to_gguf(result, folder / "model.gguf", sources)
    base_config = folder / "base-config"  # the converter reads the base's shapes from it (no weights)
    model.tokenizer.save_pretrained(base_config)
    config = model.model.config.to_dict()
    config.pop("quantization_config", None)  # read from GGUF: the converter would look for quantized weights
    config["architectures"] = config.get("architectures") or [type(model.model).__name__]
    (base_config / "config.json").write_text(json.dumps(config, indent=2))
    return lora_to_gguf(result, base_config, folder / "adapter.gguf", sources)


@dataclass(frozen=True)
class Trained:
    """What a run produced, for its manifest."""

    state: State
    examples: int
    too_long: int
    ids: list[str]
    prompt_style: str
    result: Path  # the adapter's (or model's) folder
    gguf: Path


def describe(job: TuneJob, config: TuneConfig, trained: Trained, *, source: str) -> dict[str, Any]:
    base_file = Path(source)
    return {
        "name": job.name,
        "base": job.base,
        "base_sha256": file_sha256(base_file) if base_file.is_file() else None,
        "prompt_style": trained.prompt_style,
        "data": str(job.data),
        "data_sha256": file_sha256(job.data),
        "examples": {"trained": trained.examples, "too_long": trained.too_long, "ids": trained.ids},
        "method": config.method,
        "settings": asdict(config),
        "steps": trained.state.step,
        "loss_curve": [round(loss, 5) for loss in trained.state.losses],
        "result": trained.result.name,
        "files": {p.name: file_sha256(p) for p in sorted(trained.result.iterdir()) if p.is_file()},
        "gguf": trained.gguf.name,
        "gguf_sha256": file_sha256(trained.gguf),
    }
