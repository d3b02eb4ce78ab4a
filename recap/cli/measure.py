"""Measuring: throughput benchmarks, gate calibration, the cascade's evaluation on meetings with references."""

from __future__ import annotations

import json as pyjson
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recap import render
from recap.cli.app import DataOption, JsonOption, LimitOption, app, console
from shared.config import get_settings
from shared.errors import InputError

if TYPE_CHECKING:
    from recap.cascade import Meeting


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
    overhead_only: Annotated[
        bool,
        typer.Option(
            "--overhead-only",
            help="Only the per-job overhead (16 jobs one at a time) and its per-stage breakdown; with --shape tiny "
            "it measures the pipeline's own cost with next to no model time.",
        ),
    ] = False,
    out: Annotated[Path, typer.Option(help="Where the JSON and PNG go.")] = Path("bench/results"),
    json: JsonOption = False,
) -> None:
    """Throughput: direct inference vs the pipeline, batch 1 vs B; writes JSON and a PNG to bench/results/."""
    if engines:
        from recap.benchmarks.engines import EnginesConfig
        from recap.benchmarks.engines import run as run_engines

        found = run_engines(
            EnginesConfig(
                get_settings().models_path, new_tokens=new_tokens, runs=runs, threads=threads, out=out
            )
        )
        render.mapping(console, {k: v for k, v in found.items() if k != "rows"}, as_json=json)
        for row in found["rows"]:
            render.mapping(console, {k: v for k, v in row.items() if not k.endswith("_runs")}, as_json=json)
        return
    from recap.benchmarks.throughput import BenchConfig, run
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
            overhead_only=overhead_only,
        )
    )
    render.mapping(
        console, {k: v for k, v in result.items() if k not in ("overhead_ms", "latencies_s")}, as_json=json
    )


@app.command("bench-api")
def bench_api(
    clients: Annotated[int, typer.Option(help="Concurrent connections.")] = 50,
    seconds: Annotated[float, typer.Option(help="How long the load lasts.")] = 60,
    rate: Annotated[
        float | None, typer.Option(help="Total requests/s at a fixed pace (open loop); default: flat out.")
    ] = None,
    api_workers: Annotated[int, typer.Option(help="uvicorn processes (RECAP_API_WORKERS).")] = 1,
    baseline_seconds: Annotated[float, typer.Option(help="The same load on GET /healthz first.")] = 15,
    name: Annotated[str, typer.Option(help="The result file's name under --out.")] = "api_load",
    out: Annotated[Path, typer.Option(help="Where the JSON goes.")] = Path("bench/results"),
    json: JsonOption = False,
) -> None:
    """Load test of POST /v1/jobs: `recap up` on DATABASE_URL (PostgreSQL) and REDIS_URL, a second process as
    the client; accepted requests/s, p50/p99 latency, errors, and jobs lost (accepted but never ingested)."""
    from recap.benchmarks.api_load import LoadConfig, run

    result = run(
        LoadConfig(
            clients=clients,
            seconds=seconds,
            rate=rate,
            api_workers=api_workers,
            baseline_seconds=baseline_seconds,
            out=out,
            name=name,
        ),
        get_settings(),
    )
    render.mapping(console, result, as_json=json)


@app.command("bench-burst")
def bench_burst(
    jobs: Annotated[int, typer.Option(min=1, help="Jobs submitted at once.")] = 10_000,
    timeout: Annotated[float, typer.Option(help="Seconds the drain may take at most.")] = 3600,
    out: Annotated[Path, typer.Option(help="Where the JSON goes (burst_<jobs>.json).")] = Path(
        "bench/results"
    ),
    json: JsonOption = False,
) -> None:
    """A burst of jobs to `recap up` on DATABASE_URL (PostgreSQL) and REDIS_URL with tiny models: drain time,
    jobs/s, jobs lost, peak memory per process and of Redis."""
    from recap.benchmarks.burst import BurstConfig, run

    render.mapping(
        console, run(BurstConfig(jobs=jobs, timeout_s=timeout, out=out), get_settings()), as_json=json
    )


@app.command("bench-fairness")
def bench_fairness(
    repeats: Annotated[
        int, typer.Option(min=1, help="Rounds per configuration (the medians are reported).")
    ] = 3,
    out: Annotated[Path, typer.Option(help="Where fairness.json goes.")] = Path("bench/results"),
    json: JsonOption = False,
) -> None:
    """12 short jobs from one tenant alone, then behind another tenant's ~4.9 MB job, on `recap up` (PostgreSQL,
    Redis, tiny models), with slicing and without (the baseline): their time behind it over their time alone."""
    from recap.benchmarks.fairness import FairnessConfig, run

    render.mapping(console, run(FairnessConfig(repeats=repeats, out=out), get_settings()), as_json=json)


class Half(StrEnum):
    FIRST = "first"
    SECOND = "second"


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
    json: JsonOption = False,
) -> None:
    """Run the small model on calibration meetings; write the gate's thresholds where the stack reads them."""
    from inference.scores import SCORES
    from recap import calibrate as calibration
    from shared.gate_settings import gate_file_path

    score = score or get_settings().gate_score
    if (target_rate is None) == (budget is None):
        raise typer.BadParameter("give exactly one of --target-rate and --budget")
    if score not in SCORES:
        raise typer.BadParameter(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    request = calibration.Request(
        data=data,
        meetings=_meetings(data, limit),
        score=score,
        path=out or gate_file_path(),
        target_rate=target_rate,
        budget=budget,
        online=online,
        large_cost=large_cost,
        large_sample=large_sample,
    )
    result, written = calibration.run(request)
    policy = str(written["gate_policy"])
    render.calibration(console, result, score=score, policy=policy, path=request.path, as_json=json)
    if overridden := sorted(f"RECAP_{k.upper()}" for k in written if f"RECAP_{k.upper()}" in os.environ):
        console.print(f"[yellow]note[/]: {', '.join(overridden)} set in the environment override the file")


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
    json: JsonOption = False,
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
