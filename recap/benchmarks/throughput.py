"""Throughput of the cascade against direct inference, and what micro-batching buys. `recap bench` runs it.

One run measures, on the same random-weight model (real architecture and tokenizer) and the same inputs:
  direct     our summarize function called in-process, batch 1 and batch B;
  pipeline   the same inputs through `recap up`'s real stack (Redis, four workers, database), batch 1 and B;
  overhead   jobs sent one at a time through the batch-1 stack: end-to-end latency minus the model's time.
Inputs are QMSum dev meetings cut to the model window (one generate() row per job), with the generation
length fixed (min_new_tokens = max_new_tokens) so every run does the same work.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from celery import Celery

from inference.backends.base import Backend
from inference.backends.load import load, spec_for
from inference.longform import Summarizer
from recap import client
from recap.benchmarks.overhead import overhead_ms, stage_breakdown
from recap.benchmarks.plots import plot
from recap.stack import Stack
from recap.testmodels import Shape, init_test_models
from shared.celery_app import create_app
from shared.config import Settings, get_settings
from shared.percentile import percentile
from shared.prompts import SummaryLength
from shared.schemas import JobView
from shared.stages import Stage
from shared.states import JobStatus, Tier

Turns = list[tuple[str | None, str]]


@dataclass(frozen=True)
class BenchConfig:
    shape: Shape
    jobs: int
    batch: int
    window: int = 512
    new_tokens: int = 64
    threads: int = 2
    overhead_jobs: int = 16
    out: Path = Path("bench/results")
    var: Path = Path("var/bench")
    model: str | None = None  # a real small model (e.g. bundled:smollm2-135m-instruct) instead of the shape's
    overhead_only: bool = False  # only the closed-loop overhead run and its per-stage breakdown


def _env(cfg: BenchConfig, models: tuple[Path, Path], batch: int) -> dict[str, str]:
    return {
        "RECAP_SMALL_MODEL": cfg.model or str(models[0].resolve()),
        "RECAP_LARGE_MODEL": str(models[1].resolve()),
        "RECAP_SMALL_MAX_INPUT_TOKENS": str(cfg.window),
        "RECAP_SUMMARY_TOKENS_MEDIUM": str(cfg.new_tokens),
        "RECAP_MIN_NEW_TOKENS": str(cfg.new_tokens),
        "RECAP_CHUNK_SUMMARY_TOKENS": str(min(cfg.new_tokens, cfg.window // 4)),
        "RECAP_SMALL_BATCH_SIZE": str(batch),
        "RECAP_TORCH_THREADS": str(cfg.threads),
        "RECAP_DEVICE": "cpu",
        "RECAP_GATE_THRESHOLD": "0",  # accept everything: the benchmark is about the small model's path
        "RECAP_LOG_LEVEL": "WARNING",
    }


def _stack_env(cfg: BenchConfig, batch: int) -> dict[str, str]:
    """A fresh stack per run: its own embedded Redis socket and, unless DATABASE_URL is set, SQLite file."""
    var = (cfg.var / f"stack-b{batch}").resolve()
    if var.exists():
        shutil.rmtree(var)
    env = {"RECAP_VAR_DIR": str(var)}
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{var}/recap.db"
    return env


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[Settings]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def inputs(cfg: BenchConfig, model: Backend, budget: int) -> list[Turns]:
    """`jobs` meetings (the dev set, cycled) cut to the turns that fit one window."""
    meetings = [
        json.loads(line)
        for line in (get_settings().team_dir / "data/qmsum/dev.jsonl").read_text().splitlines()
    ]
    docs = []
    for i in range(cfg.jobs):
        turns = [(t["speaker"], t["text"]) for t in meetings[i % len(meetings)]["turns"] if t["text"].strip()]
        counts = model.count([f"{s}: {t}" for s, t in turns])
        kept: Turns = []
        used = 0
        for turn, n in zip(turns, counts, strict=True):
            if used + n + 1 > budget:
                if kept:
                    break
                continue  # an opening turn longer than the window: start from the next one
            kept.append(turn)
            used += n + 1
        docs.append(kept)
    return docs


def direct(model: Backend, docs: list[Turns], batch: int) -> dict[str, Any]:
    """Our summarize function in-process, with the tier settings of the current environment."""
    summarizer = Summarizer(model, get_settings().tier(Tier.SMALL))
    summarizer.summarize([(d, SummaryLength.MEDIUM) for d in docs[:batch]])  # warm-up
    started = time.perf_counter()
    results = []
    for at in range(0, len(docs), batch):  # batches in submission order, as the worker receives them
        results += summarizer.summarize(
            [(d, SummaryLength.MEDIUM) for d in docs[at : at + batch]], scores=True
        )
    wall = time.perf_counter() - started
    assert all(r.chunks == 1 for r in results), "an input did not fit one window"
    return {"jobs_per_s": len(docs) / wall, "wall_s": wall, "model_s_per_job": wall / len(docs)}


def _write_inputs(cfg: BenchConfig, docs: list[Turns]) -> list[Path]:
    folder = cfg.var / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(docs):
        path = folder / f"job{i:04d}.json"
        path.write_text(json.dumps([{"speaker": s, "text": t} for s, t in doc]))
        paths.append(path)
    return paths


def pipeline(
    paths: list[Path], batch: int, *, closed_loop: int = 0, throughput: bool = True
) -> dict[str, Any]:
    settings = get_settings()
    stack = Stack(settings, quiet=True, api=False)
    stack.start()
    try:
        stack.wait_ready()
        app = create_app(settings)
        warm = [client.submit_file(app, settings, p, tenant="bench-warmup") for p in paths[:batch]]
        client.wait_for(settings, warm, timeout=600)
        result: dict[str, Any] = {}
        if throughput:
            result = _throughput(app, settings, paths)
        if closed_loop:
            views: list[JobView] = []
            for path in paths[:closed_loop]:
                [job_id] = [client.submit_file(app, settings, path, tenant="bench-overhead")]
                views += client.wait_for(settings, [job_id], timeout=600, poll=0.01)
            result["overhead_ms"] = [overhead_ms(v) for v in views]
            result["stages_ms"] = stage_breakdown(views)
        return result
    finally:
        stack.stop()


def _throughput(app: Celery, settings: Settings, paths: list[Path]) -> dict[str, Any]:
    """Every input submitted at once: jobs per second until the last ends, and their latencies."""
    started = time.time()
    ids = [client.submit_file(app, settings, p, tenant="bench") for p in paths]
    views = client.wait_for(settings, ids, timeout=1800, poll=0.2)
    assert all(v.status == JobStatus.DONE for v in views), [
        v.error for v in views if v.status != JobStatus.DONE
    ]
    end = max(v.finished_at.timestamp() for v in views if v.finished_at)
    latencies = [(v.finished_at - v.created_at).total_seconds() for v in views if v.finished_at]
    return {
        "jobs_per_s": len(paths) / (end - started),
        "wall_s": end - started,
        "latency_s_p50": percentile(latencies, 50),
        "latency_s_p95": percentile(latencies, 95),
        "latencies_s": latencies,
        "batch_sizes": sorted({s.batch_size for v in views for s in v.stages if s.stage == Stage.SMALL}),
    }


def run(cfg: BenchConfig) -> dict[str, Any]:
    tokenizer = get_settings().team_dir / "models/flan-t5-small"
    models_dir = cfg.var / "models" / cfg.shape
    if not (models_dir / "large" / "config.json").exists():
        init_test_models(models_dir, cfg.shape, tokenizer if tokenizer.is_dir() else None)
    models = (models_dir / "small", models_dir / "large")
    torch.set_num_threads(cfg.threads)
    # The real models live in the project's models folder, not under the bench's own var.
    models_home = {"RECAP_MODELS_DIR": str(get_settings().models_path.resolve())}
    with _environment(
        _env(cfg, models, cfg.batch) | {"RECAP_VAR_DIR": str(cfg.var)} | models_home
    ) as settings:
        model = load(spec_for(settings, Tier.SMALL))  # loaded once for both direct runs
        docs = inputs(cfg, model, Summarizer(model, settings.tier(Tier.SMALL)).budget)
        paths = _write_inputs(cfg, docs)
        if not cfg.overhead_only:
            direct_b = direct(model, docs, cfg.batch)
    if cfg.overhead_only:
        with _environment(_env(cfg, models, 1) | _stack_env(cfg, 1) | models_home):
            pipe_1 = pipeline(paths, 1, closed_loop=cfg.overhead_jobs, throughput=False)
        return _save(
            cfg, _overhead(pipe_1) | _context(cfg, model), f"overhead_{cfg.shape}_n{cfg.overhead_jobs}"
        )
    with _environment(_env(cfg, models, 1) | _stack_env(cfg, 1) | models_home):
        direct_1 = direct(model, docs, 1)
        pipe_1 = pipeline(paths, 1, closed_loop=cfg.overhead_jobs)
    with _environment(_env(cfg, models, cfg.batch) | _stack_env(cfg, cfg.batch) | models_home):
        pipe_b = pipeline(paths, cfg.batch)
    result = {
        "benchmark": "throughput",
        "direct_jobs_per_s": direct_b["jobs_per_s"],
        "pipeline_jobs_per_s": pipe_b["jobs_per_s"],
        "ratio": pipe_b["jobs_per_s"] / direct_b["jobs_per_s"],
        "batching_speedup": pipe_b["jobs_per_s"] / pipe_1["jobs_per_s"],
        **_overhead(pipe_1),
        "latency_s_p50": pipe_b["latency_s_p50"],
        "latency_s_p95": pipe_b["latency_s_p95"],
        "direct_batch1_jobs_per_s": direct_1["jobs_per_s"],
        "pipeline_batch1_jobs_per_s": pipe_1["jobs_per_s"],
        "direct_batching_speedup": direct_b["jobs_per_s"] / direct_1["jobs_per_s"],
        "pipeline_batch_sizes_seen": pipe_b["batch_sizes"],
        "latencies_s": pipe_b["latencies_s"],
    } | _context(cfg, model)
    name = cfg.model.removeprefix("bundled:") if cfg.model else cfg.shape
    result = _save(cfg, result, f"throughput_{name}_b{cfg.batch}_n{cfg.jobs}")
    plot(result, cfg.out / f"throughput_{name}_b{cfg.batch}_n{cfg.jobs}.png")
    return result


def _overhead(pipe_1: dict[str, Any]) -> dict[str, Any]:
    overheads = pipe_1["overhead_ms"]
    return {
        "overhead_ms_p50": percentile(overheads, 50),
        "overhead_ms_p95": percentile(overheads, 95),
        "stages_ms": pipe_1["stages_ms"],
        "overhead_ms": overheads,
    }


def _save(cfg: BenchConfig, result: dict[str, Any], stem: str) -> dict[str, Any]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _context(cfg: BenchConfig, model: Backend) -> dict[str, Any]:
    return {
        "settings": {
            "shape": str(cfg.shape),
            "model": cfg.model,
            "backend": str(model.kind),
            "jobs": cfg.jobs,
            "batch": cfg.batch,
            "window_tokens": cfg.window,
            "new_tokens": cfg.new_tokens,
            "torch_threads": cfg.threads,
            "batch_max_wait_s": get_settings().batch_max_wait_s,
            "broker": "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded redis (unix socket)",
            "database": (os.environ.get("DATABASE_URL") or "sqlite").split(":", 1)[0],
            "overhead": "jobs sent one at a time through the batch-1 stack: latency minus small-model seconds",
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
