"""`recap bench-tune`: LoRA against full fine-tuning of the bundled small model on this machine, per step.

The same examples (real training examples, cut to `tokens` each), the same batch and accumulation, a warm-up step
first; for each method the median seconds per optimizer step, the peak resident memory of a process that did only
that, the trainable parameters and the size of what it saves. Each method runs in its own process, so one's memory
is not the other's. The figure: full's seconds per step over LoRA's (the baseline, same run).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE = "bundled:smollm2-135m-instruct"


@dataclass(frozen=True)
class TuneBench:
    data: Path  # `recap tune data`'s examples
    tokens: int = 512  # each example's length, prompt and target
    steps: int = 4  # timed optimizer steps per method (after one warm-up step)
    grad_accum: int = 1
    threads: int | None = None
    out: Path = Path("bench/results")


def _one(method: str, bench: TuneBench) -> dict[str, Any]:
    """Runs in a child process: load, encode, train `steps + 1` steps, time all but the first."""
    import torch

    from inference.backends.hf import TextModel
    from inference.backends.load import source_of
    from recap.tuning.data import read
    from recap.tuning.train import Encoded, TuneConfig, encode, train, trainable
    from shared.config import get_settings
    from shared.prompts import PROMPTS

    settings = get_settings()
    model = TextModel.load(
        BASE, source=source_of(BASE, settings.models_path), device="cpu", threads=bench.threads
    )
    config = TuneConfig(
        method="lora" if method == "lora" else "full", grad_accum=bench.grad_accum, warmup_steps=0
    )
    prompts = PROMPTS[settings.prompt_style(BASE)]
    rows, _ = encode(read(bench.data), model, prompts, max_tokens=100_000)
    long = [r for r in rows if len(r.input_ids) >= bench.tokens][: (bench.steps + 1) * bench.grad_accum]
    cut = [Encoded(r.input_ids[-bench.tokens :], r.labels[-bench.tokens :]) for r in long]
    module = trainable(model.model, config)
    marks: list[float] = []

    def mark(_state: Any, _steps: int) -> None:
        marks.append(time.perf_counter())

    scratch = bench.out / f".tune-bench-{method}"
    train(
        module,
        cut,
        replace(config, max_steps=bench.steps + 1, checkpoint_every=10**9),
        pad=int(model.tokenizer.pad_token_id),
        device="cpu",
        checkpoint=scratch,
        on_step=mark,
    )
    for f in scratch.glob("*"):
        f.unlink()
    scratch.rmdir()
    trainable_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {
        "median_step_s": round(statistics.median(b - a for a, b in zip(marks, marks[1:], strict=False)), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "trainable_params": trainable_params,
        "saved_mb": round(trainable_params * 4 / 1e6, 1),  # fp32 weights, as saved
        "torch_threads": torch.get_num_threads(),
    }


def run(bench: TuneBench) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for method in ("lora", "full"):
        child = [
            sys.executable,
            "-m",
            "recap.benchmarks.tune_methods",
            method,
            json.dumps(asdict(bench), default=str),
        ]
        done = subprocess.run(child, capture_output=True, text=True, check=True)
        methods[method] = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "benchmark": "tune_methods",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs",
        "model": BASE,
        "tokens_per_example": bench.tokens,
        "examples_per_step": bench.grad_accum,
        "timed_steps": bench.steps,
        "methods": methods,
        "full_over_lora_step_time": round(
            methods["full"]["median_step_s"] / methods["lora"]["median_step_s"], 2
        ),
    }
    bench.out.mkdir(parents=True, exist_ok=True)
    (bench.out / "tune_methods.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":  # one method, in a process of its own (run() starts it)
    fields = json.loads(sys.argv[2])
    bench = TuneBench(**{**fields, "data": Path(fields["data"]), "out": Path(fields["out"])})
    sys.stdout.write(json.dumps(_one(sys.argv[1], bench)) + "\n")
