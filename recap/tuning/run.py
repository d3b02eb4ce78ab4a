"""One `recap tune` run: load the base, encode the examples, train with a progress bar, save and describe it.

The result goes to `<out>/<name>/`: the adapter (or model), the last checkpoint (a rerun resumes from it) and
`manifest.json`, which says what was trained from what, so the artifact can be traced and reproduced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from inference.backends.hf import TextModel
from inference.backends.load import source_of
from recap.tuning.data import read
from recap.tuning.export import llama_sources, lora_to_gguf, model_to_gguf
from recap.tuning.train import Encoded, State, TuneConfig, encode, save_result, train, trainable
from shared.config import Settings
from shared.states import Tier


@dataclass(frozen=True)
class TuneJob:
    name: str
    base: str  # a model spec: bundled:..., a folder or a .gguf file
    data: Path  # `recap tune data`'s JSONL
    out: Path  # the tuned models' folder (var/models/tuned)
    tier: Tier = Tier.SMALL  # whose prompt style the examples are shown in
    device: str = "cpu"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    prompts = settings.tier(job.tier).prompts
    rows, too_long = encode(examples, model, prompts, config.max_tokens)
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
    manifest = describe(
        job, config, state, rows, too_long, examples_ids=[e.id for e in examples], source=source
    )
    manifest |= {
        "method": config.method,
        "result": result.name,
        "gguf": gguf.name,
        "gguf_sha256": sha256_of(gguf),
    }
    manifest["files"] = {p.name: sha256_of(p) for p in sorted(result.iterdir()) if p.is_file()}
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


def describe(
    job: TuneJob,
    config: TuneConfig,
    state: State,
    rows: list[Encoded],
    too_long: int,
    *,
    examples_ids: list[str],
    source: str,
) -> dict[str, Any]:
    base_file = Path(source)
    return {
        "name": job.name,
        "base": job.base,
        "base_sha256": sha256_of(base_file) if base_file.is_file() else None,
        "tier": job.tier.value,
        "data": str(job.data),
        "data_sha256": sha256_of(job.data),
        "examples": {"trained": len(rows), "too_long": too_long, "ids": examples_ids},
        "settings": asdict(config),
        "steps": state.step,
        "loss_curve": [round(loss, 5) for loss in state.losses],
    }
