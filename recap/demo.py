"""`make demo`: the local stack on embedded defaults, the bundled example meetings, summaries and costs."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from rich.console import Console

from recap import client, render
from recap.stack import Stack
from shared.celery_app import create_app
from shared.config import Settings, get_settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The real FLAN-T5 tokenizer, where the team folder sits beside the repo; else a byte-level one.
TEAM_TOKENIZER = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "flan-t5-small"


def unavailable_reason(name: str) -> str | None:
    """Why `name` cannot be loaded here, or None when it can (a local folder, cached, or the hub answers)."""
    from huggingface_hub import constants, try_to_load_from_cache

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
    tokenizer = TEAM_TOKENIZER if TEAM_TOKENIZER.is_dir() else None
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


def run_demo(console: Console, *, force_test_models: bool = False) -> int:
    settings = get_settings()
    reasons = (
        []
        if force_test_models
        else [
            r
            for r in (unavailable_reason(settings.small_model), unavailable_reason(settings.large_model))
            if r
        ]
    )
    random_weights = force_test_models or bool(reasons)
    for reason in reasons:
        console.print(f"[yellow]cannot load the configured model:[/] {reason}")
    if random_weights:
        console.print(
            "[yellow bold]Falling back to RANDOM-WEIGHT test models (`recap models init-test`): real "
            "architectures and real compute, but their summaries are noise.[/]"
        )
        use_test_models(console, settings)
        settings = get_settings()
    files = sorted(p for p in EXAMPLES.iterdir() if p.is_file())
    stack = Stack(settings)
    try:
        stack.start()
        console.print(f"workers ready: {', '.join(stack.wait_ready())}")
        celery = create_app(settings)
        job_ids = [client.submit_file(celery, settings, f, tenant="demo") for f in files]
        views = client.wait_for(settings, job_ids, timeout=900)
        title = "example meetings" + (
            " (RANDOM-WEIGHT models: summaries are noise)" if random_weights else ""
        )
        render.jobs(console, views, as_json=False, title=title)
        return 0 if all(v.status in ("done", "degraded") for v in views) else 1
    finally:
        stack.stop()
