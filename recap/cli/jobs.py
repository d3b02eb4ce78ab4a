"""Jobs: submit transcripts, parse one as ingestion would, show jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from json import dumps
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from recap import client, render
from recap.cli.app import JsonOption, app, console
from shared.celery_app import create_app
from shared.config import Settings, get_settings
from shared.errors import InputError
from shared.prompts import SummaryLength
from shared.states import JobStatus

FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="Force the format (vtt, srt, txt, json) instead of detecting it."),
]


UNAVAILABLE = 3  # exit status: a datastore is down; nothing was accepted, try again later


@contextmanager
def unavailable(settings: Settings) -> Iterator[None]:
    """A datastore that is down is an answer (`unavailable`, exit 3), not a traceback."""
    try:
        yield
    except client.BrokerUnavailable as exc:
        console.print(f"[red]unavailable:[/] {exc}")
        raise typer.Exit(UNAVAILABLE) from None
    except OperationalError as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        console.print(
            f"[red]unavailable:[/] cannot reach the database at {where} ({type(exc.orig).__name__})"
        )
        raise typer.Exit(UNAVAILABLE) from None


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
    with unavailable(settings):
        client.check_broker(celery, settings)
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


jobs_app = typer.Typer(help="List jobs; retry failed ones (the dead letters).")
app.add_typer(jobs_app, name="jobs")


def parse_since(text: str) -> datetime:
    """`30m`, `2h`, `7d` ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration (30m, 2h, 7d) nor an ISO time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    code: Annotated[str | None, typer.Option(help="Only jobs that ended with this error code.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only jobs created since: 30m, 2h, 7d, or an ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json: JsonOption = False,
) -> None:
    """List jobs, newest first: `recap jobs --status failed` shows the dead letters with their codes."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    with unavailable(settings):
        views = client.list_jobs(
            settings, status=status, code=code, since=parse_since(since) if since else None, limit=limit
        )
    for v in views:
        v.gate, v.stages = None, []
    render.jobs(console, views, as_json=json)


@jobs_app.command()
def retry(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Failed jobs to run again.")] = None,
    code: Annotated[str | None, typer.Option(help="Every failed job with this error code.")] = None,
    json: JsonOption = False,
) -> None:
    """Requeue failed jobs from the stage they failed in, as a new run (their ledger rows stay)."""
    if not job_ids and code is None:
        raise typer.BadParameter("name job ids, or --code CODE")
    try:
        parsed = [uuid.UUID(j) for j in job_ids or []]
    except ValueError:
        raise typer.BadParameter(f"not a job id (a UUID) among {job_ids}") from None
    settings = get_settings()
    with unavailable(settings):
        requeued = client.retry(create_app(settings), settings, job_ids=parsed, code=code)
    for job_id, stage in requeued:
        if json:
            typer.echo(dumps({"job_id": str(job_id), "stage": str(stage)}))
        else:
            console.print(f"{job_id} requeued at {stage}")
    if not json:
        console.print(f"{len(requeued)} job(s) requeued (only failed jobs are)")
