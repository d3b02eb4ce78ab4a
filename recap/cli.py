"""`recap`: run the local stack, submit transcripts, read jobs, make offline test models, run the demo."""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recap import client, render
from shared.celery_app import create_app
from shared.config import get_settings
from shared.db.models import JobStatus
from shared.errors import InputError
from shared.prompts import SummaryLength

app = typer.Typer(
    help="Recap: asynchronous meeting summarization.", no_args_is_help=True, add_completion=False
)
models_app = typer.Typer(help="Model helpers.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()


def _logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def up() -> None:
    """Run the whole local stack in the foreground until Ctrl-C or SIGTERM."""
    from recap.stack import Stack, run_forever

    _logging()
    raise typer.Exit(run_forever(Stack(get_settings())))


@app.command()
def migrate() -> None:
    """Migrate the database (DATABASE_URL) to the latest schema."""
    from shared.db.migrate import upgrade

    upgrade()


FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="Force the format (vtt, srt, txt, json) instead of detecting it."),
]


@app.command()
def submit(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[
        str, typer.Option(help="Who the job is for (costs are reported per tenant).")
    ] = "default",
    length: Annotated[
        SummaryLength | None, typer.Option(help="Summary length (default: RECAP_DEFAULT_SUMMARY_LENGTH).")
    ] = None,
    format: FormatOption = None,
    wait: Annotated[bool, typer.Option(help="Block until every job has ended.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 600.0,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per job per line.")] = False,
) -> None:
    """Submit transcript files. With --wait, exits 1 unless every job ends `done`."""
    settings = get_settings()
    celery = create_app(settings)
    try:
        client.check_broker(celery, settings)
    except client.BrokerUnavailable as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    job_ids = [
        client.submit_file(celery, settings, path, tenant=tenant, length=length, format=format)
        for path in files
    ]
    views = (
        client.wait_for(settings, job_ids, timeout=timeout)
        if wait
        else [v for v in (client.view(settings, j) for j in job_ids) if v]
    )
    for v in views:
        v.gate, v.stages = None, []
    render.jobs(console, views, as_json=json)
    if wait and any(v.status != JobStatus.DONE for v in views):
        raise typer.Exit(1)


@app.command()
def parse(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    format: FormatOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print the normalized transcript as JSON.")] = False,
) -> None:
    """Parse a transcript as ingestion would. Exits 2 with an error object {code, message} for bad input."""
    from services.ingestion.decode import read_capped
    from services.ingestion.parse import parse as parse_transcript

    settings = get_settings()
    try:
        parsed = parse_transcript(
            read_capped(file, settings.max_transcript_bytes),
            max_bytes=settings.max_transcript_bytes,
            max_turns=settings.max_turns,
            format=format,
            cleaning=settings.cleaning,
        )
    except InputError as exc:
        render.error(console, exc, as_json=json)
        raise typer.Exit(2) from None
    render.transcript(console, parsed.format, parsed.turns, as_json=json)


@app.command()
def status(
    job_ids: Annotated[list[str], typer.Argument(help="One or more job ids.")],
    json: Annotated[bool, typer.Option("--json", help="One JSON object per job per line.")] = False,
) -> None:
    """Show jobs: status, summary, chunks read, cost, gate decision and the per-stage cost ledger."""
    try:
        parsed = [uuid.UUID(j) for j in job_ids]
    except ValueError:
        console.print(f"[red]error:[/] not a job id (a UUID) among {job_ids}")
        raise typer.Exit(2) from None
    settings = get_settings()
    missing = False
    for job_id in parsed:
        job = client.view(settings, job_id)
        if job is None:
            console.print(f"[red]error:[/] no job {job_id}")
            missing = True
            continue
        render.job_detail(console, job, as_json=json)
    if missing:
        raise typer.Exit(1)


@app.command()
def bench(
    shape: Annotated[str, typer.Option(help="tiny | flan-t5-small | flan-t5-base")] = "flan-t5-small",
    jobs: Annotated[int, typer.Option(help="Jobs per measured run.")] = 64,
    batch: Annotated[int, typer.Option(help="Micro-batch size B, compared against 1.")] = 8,
    threads: Annotated[int, typer.Option(help="Torch threads, the same for direct and pipeline.")] = 2,
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per job (min = max).")] = 64,
    out: Annotated[Path, typer.Option(help="Where the JSON and PNG go.")] = Path("bench/results"),
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Throughput: direct inference vs the pipeline, batch 1 vs B; writes JSON and a PNG to bench/results/."""
    from bench.throughput import BenchConfig, run
    from recap.testmodels import Shape

    result = run(
        BenchConfig(
            shape=Shape(shape), jobs=jobs, batch=batch, threads=threads, new_tokens=new_tokens, out=out
        )
    )
    render.mapping(
        console, {k: v for k, v in result.items() if k not in ("overhead_ms", "latencies_s")}, as_json=json
    )


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


@app.command()
def demo(
    test_models: Annotated[
        bool, typer.Option(help="Skip the configured models; use random-weight ones.")
    ] = False,
) -> None:
    """Start the local stack, summarize the bundled example meetings, print summaries and costs, stop."""
    from recap.demo import run_demo

    _logging()
    raise typer.Exit(run_demo(console, force_test_models=test_models))


if __name__ == "__main__":
    app()
