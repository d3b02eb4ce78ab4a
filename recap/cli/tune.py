"""`recap tune`: fine-tune a tier's model; `recap tune data`: build its training examples from the team folder;
`recap tune segments`: the held-out segment-level evaluation set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recap.cli.app import app, console, setup_logging
from shared.config import get_settings
from shared.errors import InputError

tune_app = typer.Typer(help="Fine-tune a tier's model (`recap tune --help`).")
app.add_typer(tune_app, name="tune")
DATA = Path("var/tune/data.jsonl")
SEGMENTS = Path("var/tune/segments_val.jsonl")


@tune_app.command("data")
def data(
    out: Annotated[Path, typer.Option(help="Where the examples go (JSONL).")] = DATA,
) -> None:
    """Training examples from the team folder's training meetings only (QMSum train, AMI train annotations)."""
    from recap.tuning.data import build, write

    try:
        examples = build(get_settings().team_dir / "data")
    except InputError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from exc
    digest = write(examples, out)
    console.print(f"{len(examples)} examples from training meetings only -> {out} (sha256 {digest[:16]}...)")


@tune_app.command("segments")
def segments(
    out: Annotated[Path, typer.Option(help="Where the items go (JSONL, read by `recap eval`).")] = SEGMENTS,
    max_words: Annotated[int, typer.Option(min=1, help="Longest item kept (transcript words).")] = 1200,
) -> None:
    """The segment-level evaluation set, from the team folder's validation meetings only."""
    from recap.tuning import segments as segment_set

    try:
        items = segment_set.build(get_settings().team_dir / "data", max_words=max_words)
    except InputError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from exc
    segment_set.write(items, out)
    console.print(f"{len(items)} items from validation meetings only -> {out}")


@tune_app.command("report")
def report(
    base: Annotated[Path, typer.Option(help="`recap eval` JSON with the base small model.")],
    tuned: Annotated[
        Path, typer.Option(help="`recap eval` JSON with the tuned one (same items, same cache).")
    ],
    out: Annotated[Path, typer.Option(help="Where the comparison goes (JSON).")],
    hosted: Annotated[
        Path | None,
        typer.Option(help="The tuned run again at hosted prices (RECAP_PRICES), for the cost axis."),
    ] = None,
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples over items.")] = 1000,
    seed: int = 0,
) -> None:
    """What tuning bought: tuned vs base small (paired), vs large, and the tuned pair's cascade."""
    from recap import render
    from recap.benchmarks.tune_report import run

    try:
        result = run(base, tuned, out, hosted=hosted, resamples=resamples, seed=seed)
    except InputError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from exc
    render.mapping(console, result["targets"], as_json=False)


@tune_app.callback(invoke_without_command=True)
def tune(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The tuned model's name: var/models/tuned/<name>.")] = "small",
    base: Annotated[str | None, typer.Option(help="Model spec to train (default: the small tier's).")] = None,
    data: Annotated[Path, typer.Option(help="Examples from `recap tune data`.")] = DATA,
    method: Annotated[str, typer.Option(help="lora | full")] = "lora",
    epochs: float = 1.0,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: the epochs').")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Default: 2e-4 LoRA, 2e-5 full.")] = None,
    grad_accum: int = 8,
    max_tokens: Annotated[int, typer.Option(help="Longest example kept, prompt and target.")] = 1024,
    lora_r: int = 16,
    checkpoint_every: int = 25,
    seed: int = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda (bf16 on CUDA)")] = "cpu",
) -> None:
    """Fine-tune (a rerun of the same name resumes from its last checkpoint)."""
    if ctx.invoked_subcommand is not None:
        return
    from recap.tuning.run import TuneJob, tune
    from recap.tuning.train import TuneConfig

    setup_logging()
    if method not in ("lora", "full"):
        raise typer.BadParameter("lora or full", param_hint="--method")
    settings = get_settings()
    config = TuneConfig(
        method="lora" if method == "lora" else "full",
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        grad_accum=grad_accum,
        max_tokens=max_tokens,
        lora_r=lora_r,
        checkpoint_every=checkpoint_every,
        seed=seed,
        threads=threads,
    )
    job = TuneJob(name, base or settings.small_model, data, settings.models_path / "tuned", device=device)
    try:
        manifest = tune(job, config, settings, console)
    except InputError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"tuned {name}: {manifest['steps']} steps -> {job.out / name}")


@app.command("bench-tune")
def bench_tune(
    data: Annotated[Path, typer.Option(help="Examples from `recap tune data`.")] = DATA,
    tokens: Annotated[int, typer.Option(help="Tokens per example (prompt and target).")] = 512,
    steps: Annotated[int, typer.Option(help="Timed optimizer steps per method.")] = 4,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")] = None,
    out: Annotated[Path, typer.Option(help="Where tune_methods.json goes.")] = Path("bench/results"),
) -> None:
    """LoRA against full fine-tuning of the bundled small model: seconds per step, memory, what each saves."""
    from recap import render
    from recap.benchmarks.tune_methods import TuneBench, run

    render.mapping(console, run(TuneBench(data, tokens, steps, threads=threads, out=out)), as_json=False)
