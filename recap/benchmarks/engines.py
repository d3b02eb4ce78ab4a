"""Prompt and generation speed of each backend on each bundled real model. `recap bench --engines` runs it.

For every (model, engine, batch) it times a generate() of 1 new token (the prompt's reading, plus one step)
and one of N new tokens with the length fixed (min = max), on the same prompts: the bundled example meetings
in the model's own chat template. prompt tokens/s = input tokens / t(1); generation tokens/s = generated
tokens after the first / (t(N) - t(1)). Medians over runs; the models load once each, outside the timing.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.backends import bundled
from inference.backends.base import Backend
from shared.model_kinds import BackendKind
from shared.prompts import PLAIN, SummaryLength

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class EnginesConfig:
    models_dir: Path
    models: tuple[str, ...] = tuple(bundled.BUNDLES)
    engines: tuple[BackendKind, ...] = (BackendKind.LLAMACPP, BackendKind.TRANSFORMERS)
    batches: tuple[int, ...] = (1, 4)
    new_tokens: int = 32
    runs: int = 3
    threads: int = 2
    out: Path = Path("bench/results")


def _examples() -> list[str]:
    """The example meetings as plain `Speaker: text` transcripts (the JSON ones flattened)."""
    texts = []
    for path in sorted(EXAMPLES.iterdir()):
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            turns = data["turns"] if isinstance(data, dict) else data
            texts.append("\n".join(f"{t['speaker']}: {t['text']}" for t in turns))
        else:
            texts.append(path.read_text())
    return texts


def _load(engine: BackendKind, name: str, path: Path, threads: int) -> Backend:
    if engine is BackendKind.LLAMACPP:
        from inference.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend.load(name, str(path), n_ctx=2048, threads=threads)
    from inference.backends.hf import TextModel

    return TextModel.load(name, source=str(path), device="cpu", threads=threads)


def _timed(model: Backend, prompts: list[str], new_tokens: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    gens = model.generate(prompts, max_new_tokens=new_tokens, min_new_tokens=new_tokens, scores=True)
    return (
        time.perf_counter() - started,
        sum(g.input_tokens for g in gens),
        sum(g.output_tokens for g in gens),
    )


def measure(model: Backend, prompts: list[str], cfg: EnginesConfig) -> dict[str, Any]:
    model.generate(prompts[:1], max_new_tokens=2)  # warm-up
    prompt_rates, gen_rates = [], []
    for _ in range(cfg.runs):
        t1, n_in, _ = _timed(model, prompts, 1)
        tn, _, n_out = _timed(model, prompts, cfg.new_tokens)
        prompt_rates.append(n_in / t1)
        gen_rates.append((n_out - len(prompts)) / (tn - t1))
    return {
        "prompt_tokens_per_s": statistics.median(prompt_rates),
        "generation_tokens_per_s": statistics.median(gen_rates),
        "prompt_tokens_per_s_runs": prompt_rates,
        "generation_tokens_per_s_runs": gen_rates,
        "input_tokens": n_in,
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    short = {"smollm2-135m-instruct": "SmolLM2", "qwen2.5-coder-1.5b-instruct": "Qwen 1.5B"}
    labels = [
        f"{short.get(r['model'].split(':')[-1], r['model'])}\n{r['engine']}\nbatch {r['batch']}" for r in rows
    ]
    for ax, key, title in zip(
        axes,
        ("prompt_tokens_per_s", "generation_tokens_per_s"),
        ("prompt (reading)", "generation"),
        strict=True,
    ):
        ax.bar(
            range(len(rows)),
            [r[key] for r in rows],
            color=["C0" if r["engine"] == "llamacpp" else "C1" for r in rows],
        )
        ax.set_xticks(range(len(rows)), labels, fontsize=6.5)
        ax.set(ylabel="tokens / s", title=title, yscale="log")
    fig.suptitle(f"bundled models on {os.cpu_count()} CPUs (blue: llama.cpp, orange: transformers)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(cfg: EnginesConfig) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for name in cfg.models:
        spec = bundled.PREFIX + name
        path = bundled.model_path(spec, cfg.models_dir)
        for engine in cfg.engines:
            started = time.perf_counter()
            model = _load(engine, spec, path, cfg.threads)
            load_s = time.perf_counter() - started
            for batch in cfg.batches:
                prompts = [model.prompt(PLAIN.final[SummaryLength.MEDIUM], t) for t in _examples()[:batch]]
                rows.append(
                    {"model": spec, "engine": str(engine), "batch": batch, "load_s": load_s}
                    | measure(model, prompts, cfg)
                )
            del model
            gc.collect()
    by: dict[tuple[str, str, int], dict[str, Any]] = {(r["model"], r["engine"], r["batch"]): r for r in rows}
    speedups = {
        f"{m.split(':')[-1]} b{b}": {
            key: by[(m, "llamacpp", b)][key] / by[(m, "transformers", b)][key]
            for key in ("prompt_tokens_per_s", "generation_tokens_per_s")
        }
        for (m, e, b) in by
        if e == "llamacpp" and (m, "transformers", b) in by
    }
    result = {
        "benchmark": "engines",
        "rows": rows,
        "llamacpp_over_transformers": speedups,
        "settings": {
            "new_tokens": cfg.new_tokens,
            "runs": cfg.runs,
            "threads": cfg.threads,
            "prompts": "examples/",
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "engines.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, cfg.out / "engines.png")
    return result
