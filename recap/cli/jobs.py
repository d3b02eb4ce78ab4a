"""Jobs: submit transcripts, parse one as ingestion would, show jobs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from recap import client, render
from recap.cli.app import JsonOption, app, console
from shared.celery_app import create_app
from shared.config import get_settings
from shared.errors import InputError
from shared.prompts import SummaryLength
from shared.states import JobStatus

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
    json: JsonOption = False,
) -> None:
    """Submit transcript files. With --wait, exits 1 unless every job ends `done` (or `degraded`)."""
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
    if wait and any(v.status not in (JobStatus.DONE, JobStatus.DEGRADED) for v in views):
        raise typer.Exit(1)


@app.command()
def parse(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    format: FormatOption = None,
    json: JsonOption = False,
) -> None:
    """Parse a transcript as ingestion would. Exits 2 with an error object {code, message} for bad input."""
    from services.ingest.decode import read_capped
    from services.ingest.parse import check, parse_as_configured

    try:
        check(get_settings())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        parsed = parse_as_configured(read_capped(file, get_settings().max_transcript_bytes), format=format)
    except InputError as exc:
        render.error(console, exc, as_json=json)
        raise typer.Exit(2) from None
    render.transcript(console, parsed.format, parsed.turns, as_json=json)


@app.command()
def status(
    job_ids: Annotated[list[str], typer.Argument(help="One or more job ids.")],
    json: JsonOption = False,
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
