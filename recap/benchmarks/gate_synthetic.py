"""Proof that margin sampling works, where quality can be measured on a CPU: `python -m recap.benchmarks.gate_synthetic`.

Two seq2seq models of different sizes are trained from scratch on the synthetic meeting task (recap/benchmarks/synthetic.py,
exact-match answers). Each evaluation seed draws fresh test meetings; both models answer every one, the small
model's generations are scored by the gate's own code (per-token statistics, `aggregate`), and the cascade is
evaluated by the same harness as `recap eval` (thresholds from `threshold_for_rate`). Costs are the measured
generate() seconds per job; with one cost per model the normalized area does not depend on them, so a busy machine
changes the timings, not the result. Training is counted in steps for the same reason. Writes
bench/results/gate_synthetic.json and .png; the models are not kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from inference.backends.hf import TextModel
from inference.scores import SCORES, Generated, aggregate
from recap.benchmarks import synthetic
from recap.evaluation import Report, Row, evaluate, plot
from shared.config import Settings

MARGIN_SCORES = ["first_margin", "mean_margin", "min_margin", "p10_margin", "low_margin_share"]
# Length baseline is the meeting's input length ("length" in the report); truncation is always 0 here.
SCORED = [*MARGIN_SCORES, "mean_entropy", "mean_logprob", "output_tokens"]
T_95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def log(line: str) -> None:
    sys.stderr.write(line + "\n")


def answer(model: TextModel, meetings: list[str], batch: int = 128) -> tuple[list[Any], float]:
    """Generations with token statistics, and the mean generate() seconds per meeting."""
    gens, seconds = [], 0.0
    for at in range(0, len(meetings), batch):
        started = time.perf_counter()
        gens += model.generate(meetings[at : at + batch], max_new_tokens=48, scores=True)
        seconds += time.perf_counter() - started
    return gens, seconds / len(meetings)


def seed_rows(small: TextModel, large: TextModel, seed: int, n: int, margin_cut: float) -> list[Row]:
    test = synthetic.dataset(10_000 + seed, n)
    meetings = [e.meeting for e in test]
    small_gens, small_s = answer(small, meetings)
    large_gens, large_s = answer(large, meetings)
    rows = []
    for i, (e, s, lg) in enumerate(zip(test, small_gens, large_gens, strict=True)):
        scores = aggregate(Generated([s.stats], input_tokens=s.input_tokens), margin_cut=margin_cut)
        rows.append(
            Row(
                job=f"{seed}-{i}",
                scores=scores,
                small={"exact": float(s.text == e.summary)},
                large={"exact": float(lg.text == e.summary)},
                cost_small=small_s,
                cost_large=large_s,
            )
        )
    return rows


def interval(values: list[float]) -> list[float]:
    """95% t-interval of the mean over seeds."""
    mean = statistics.fmean(values)
    half = (
        T_95.get(len(values), 1.96) * statistics.stdev(values) / len(values) ** 0.5
        if len(values) > 1
        else 0.0
    )
    return [mean - half, mean + half]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The small model stops mid-way through learning the task (right on most meetings, not all); the large one,
    # twice as deep, trains longer. Both within 15 minutes on 2 cores.
    parser.add_argument("--small-steps", type=int, default=1350)
    parser.add_argument("--large-steps", type=int, default=2500)
    parser.add_argument("--max-minutes", type=float, default=15, help="training time cap for both together")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--meetings", type=int, default=500, help="test meetings per seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tok = synthetic.tokenizer()
    trained = {}
    deadline = time.perf_counter() + args.max_minutes * 60
    for size, steps in ((synthetic.SMALL, args.small_steps), (synthetic.LARGE, args.large_steps)):
        model = synthetic.build(size, tok, seed=0)
        stats = synthetic.train(model, tok, steps=steps, max_seconds=deadline - time.perf_counter(), seed=1)
        stats["parameters"] = sum(p.numel() for p in model.parameters())
        trained[size.name] = (TextModel(size.name, model, tok, "cpu"), stats)
        log(f"trained {size.name}: {stats}")

    margin_cut = Settings().gate_margin_cut
    reports: list[Report] = []
    for seed in range(args.seeds):
        rows = seed_rows(trained["small"][0], trained["large"][0], seed, args.meetings, margin_cut)
        reports.append(evaluate(rows, scores=SCORED, primary="exact"))
        log(f"seed {seed}: " + ", ".join(f"{k} {v.auc['exact']:.3f}" for k, v in reports[-1].methods.items()))

    methods: dict[str, dict[str, Any]] = {
        name: {
            "auc": statistics.fmean(aucs := [r.methods[name].auc["exact"] for r in reports]),
            "ci": interval(aucs),
            "per_seed": aucs,
        }
        for name in reports[0].methods
    }
    # At equal cost, per seed: the margin cascade's area minus random's (the claim under test).
    gaps = {
        name: interval([r.methods[name].auc["exact"] - r.methods["random"].auc["exact"] for r in reports])
        for name in MARGIN_SCORES
    }
    result = {
        "task": "synthetic meetings -> standing decisions, exact match (recap/benchmarks/synthetic.py)",
        "models": {name: stats for name, (_, stats) in trained.items()},
        "accuracy": {
            "small": statistics.fmean(r.always_small["exact"] for r in reports),
            "large": statistics.fmean(r.always_large["exact"] for r in reports),
        },
        "cost_per_job_s": {
            "small": reports[0].cost_range[0],
            "large": reports[0].cost_range[1] - reports[0].cost_range[0],
        },
        "seeds": args.seeds,
        "meetings_per_seed": args.meetings,
        "methods": methods,
        "margin_minus_random_ci": gaps,
        "scores_known": list(SCORES),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate_synthetic.json").write_text(json.dumps(result, indent=2) + "\n")
    shown = ["mean_margin", "min_margin", "first_margin", "mean_entropy", "random", "length", "oracle"]
    plot(
        reports[0],
        str(args.out / "gate_synthetic.png"),
        title="synthetic meetings, seed 0: accuracy vs cost",
        methods=shown,
        cost_unit="generate() seconds",
    )
    sys.stdout.write(
        json.dumps(
            {k: {"auc": round(v["auc"], 4), "ci": [round(x, 4) for x in v["ci"]]} for k, v in methods.items()}
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
