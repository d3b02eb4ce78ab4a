"""How jobs are shown on a terminal: JSON lines for scripts, tables for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shared.costs import StageSpend, always_large
from shared.errors import JobError
from shared.schemas import JobView, Turn

if TYPE_CHECKING:
    from recap.bootstrap import Interval
    from recap.cascade import Meeting
    from recap.eval_run import Outcome
    from services.gate.calibration import Calibration
    from shared.config import Settings


def _gate_cell(job: JobView) -> str:
    if job.gate is None:
        return "-"
    return f"{job.gate.score_name}={job.gate.score:.3f} (t={job.gate.threshold:g}) -> {job.gate.decision}"


def _outcome(job: JobView) -> str:
    summary = job.summary or ""
    summary = summary if len(summary) <= 400 else summary[:400] + " ..."
    if job.error and job.summary:  # degraded: a summary, and why it is the small model's
        return f"{summary}\n[yellow]{job.error.code}[/]: {job.error.message}"
    if job.error:
        return f"[red]{job.error.code}[/]: {job.error.message}"
    return summary


def jobs(console: Console, views: list[JobView], *, as_json: bool, title: str | None = None) -> None:
    if as_json:
        for v in views:
            typer.echo(v.model_dump_json(exclude={"gate", "summaries", "stages"}))
        return
    table = Table(title=title)
    for column in ("source", "job", "status", "tier", "chunks", "gate", "cost USD"):
        table.add_column(column, overflow="fold")
    for v in views:
        table.add_row(
            v.source or "-",
            v.job_id[:8],
            v.status,
            v.tier or "-",
            "-" if v.chunks is None else str(v.chunks),
            _gate_cell(v),
            f"{v.cost_usd:.6f}",
        )
    console.print(table)
    console.print(f"total cost: ${sum(v.cost_usd for v in views):.6f} for {len(views)} job(s)\n")
    for v in views:
        console.print(f"[bold]{v.source or v.job_id}[/] ({v.tier or v.status}): {_outcome(v)}\n")


def spend_by_stage(view: JobView) -> dict[str, StageSpend]:
    """A job's spend per stage, its attempts summed."""
    spend: dict[str, StageSpend] = {}
    for s in view.stages:
        was = spend.get(s.stage, StageSpend(0, 0, Decimal(0)))
        spend[s.stage] = StageSpend(
            was.input_tokens + s.input_tokens,
            was.output_tokens + s.output_tokens,
            was.cost_usd + Decimal(str(s.cost_usd)),
        )
    return spend


def demo(console: Console, views: list[JobView], *, title: str, settings: Settings) -> None:
    """Each meeting's summary in full, with its tier, gate decision and cost; then the totals."""
    console.rule(title)
    width = min(console.width, 110)
    for v in views:
        head = f"[bold]{v.source or v.job_id}[/]: {v.status}, tier {v.tier or '-'}, cost ${v.cost_usd:.6f}"
        body = Text(v.summary or "")
        if v.error:
            body.append(f"\n{v.error.code}: {v.error.message}", style="yellow" if v.summary else "red")
        console.print(
            Panel(body, title=head, title_align="left", subtitle=f"gate: {_gate_cell(v)}", width=width)
        )
    total = sum(v.cost_usd for v in views)
    large, how = always_large(
        [spend_by_stage(v) for v in views],
        settings.prices.get(settings.large_model),
        settings.gate_large_cost_usd,
    )
    escalated = sum(1 for v in views if v.tier == "large")
    console.print(
        f"{len(views)} meetings, {escalated} escalated to the large model. Total cost ${total:.6f}; "
        f"always-large would have cost about ${float(large):.6f} ({how})."
    )


def job_detail(console: Console, job: JobView, *, as_json: bool) -> None:
    if as_json:
        typer.echo(job.model_dump_json())
        return
    jobs(console, [job], as_json=False)
    stages = Table(title="cost ledger")
    for column in ("stage", "model", "device", "in tok", "out tok", "seconds", "cost USD"):
        stages.add_column(column)
    for s in job.stages:
        stages.add_row(
            s.stage,
            s.model or "-",
            s.device or "-",
            str(s.input_tokens),
            str(s.output_tokens),
            f"{s.seconds:.3f}",
            f"{s.cost_usd:.8f}",
        )
    console.print(stages)


def transcript(console: Console, format: str, turns: list[Turn], *, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps({"format": format, "turns": [t.model_dump() for t in turns]}, ensure_ascii=False)
        )
        return
    table = Table(title=f"{format}: {len(turns)} turns, {sum(len(t.text.split()) for t in turns):,} words")
    for column in ("start", "speaker", "text"):
        table.add_column(column, overflow="fold")
    for t in turns:
        start = "-" if t.start is None else f"{t.start:.1f}"
        table.add_row(start, t.speaker or "-", t.text if len(t.text) <= 200 else t.text[:200] + " ...")
    console.print(table)


def error(console: Console, exc: JobError, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"code": exc.code, "message": exc.message}))
    else:
        console.print(f"[red]error {exc.code}:[/] {exc.message}")


def mapping(console: Console, values: dict[str, object], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(values))
        return
    for key, value in values.items():
        console.print(f"[bold]{key}[/]: {value}")


def calibration(
    console: Console, result: Calibration, *, score: str, policy: str, path: Path, as_json: bool
) -> None:
    if as_json:
        typer.echo(json.dumps({"policy": policy, "score": score, "gate_file": str(path)} | asdict(result)))
        return
    table = Table(title=f"thresholds for a {result.rate:.1%} escalation rate")
    for column in ("score", "threshold", "escalates on this set"):
        table.add_column(column)
    for name, threshold in result.thresholds.items():
        mark = " [bold]<- gate[/]" if name == score else ""
        table.add_row(name + mark, f"{threshold:.6g}", f"{result.realized[name]:.1%}")
    console.print(table)
    console.print(
        f"c_s = USD {result.small_cost_usd:.6f} per job"
        + (f", c_l = USD {result.large_cost_usd:.6f}" if result.large_cost_usd is not None else "")
        + f"\nwrote {policy} policy on {score} to {path}: the next `recap up` uses it"
    )


@contextmanager
def tier_progress(meetings: Sequence[Meeting]) -> Iterator[Callable[[str, int], None]]:
    """A progress bar per model tier on stderr, in transcript words (a long meeting counts for more), with ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from recap.cascade import words

    total = sum(words(m) for m in meetings)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("words"),
        TimeRemainingColumn(elapsed_when_finished=True),
        console=Console(stderr=True),
    ) as bar:
        tasks = {tier: bar.add_task(f"{tier} model", total=total) for tier in ("small", "large")}
        yield lambda tier, done: bar.advance(tasks[tier], done)


def _ci(interval: Interval) -> str:
    return f"[{interval.low:.4f}, {interval.high:.4f}]"


def evaluation(console: Console, outcome: Outcome, *, path: Path, as_json: bool) -> None:
    for tier, calls in outcome.calls.items():
        Console(stderr=True).print(
            f"{tier} model: {calls.misses} calls made, {calls.hits} replayed from {calls.folder}"
        )
    if as_json:
        typer.echo(json.dumps(outcome.result))
        return
    report, intervals, result = outcome.report, outcome.intervals, outcome.result
    primary = report.primary
    table = Table(
        title=f"{primary} area per method, {report.jobs} meetings "
        f"({intervals.level:.0%} bootstrap intervals, {intervals.resamples} resamples)"
    )
    for column in ("method", "area", "interval", "- random", "- length"):
        table.add_column(column)
    for name, curve in sorted(report.methods.items(), key=lambda kv: -kv[1].auc[primary]):
        method = intervals.methods.get(name)
        versus = method.versus if method else {}
        table.add_row(
            name,
            f"{curve.auc[primary]:.4f}",
            _ci(method.area[primary]) if method else "-",
            *(
                f"{versus[b].estimate:+.4f} {_ci(versus[b].interval)}"
                + (" [green]better[/]" if versus[b].better else "")
                if b in versus
                else "-"
                for b in ("random", "length")
            ),
        )
    for name, quality in (("always small", report.always_small), ("always large", report.always_large)):
        table.add_row(f"[dim]{name}[/]", f"{quality[primary]:.4f}", "", "", "")
    console.print(table)
    score = result["gate_score"]
    if gate := result["buyer"].get(score):
        buyer = Table(
            title=f"the gate's score, {score}: what each rate buys (calibrated: fitted on the other half)"
        )
        for column in (
            "rate",
            "realized",
            "rouge1",
            "rouge2",
            "rougeL",
            "of large",
            "USD/meeting",
            "of large's cost",
        ):
            buyer.add_column(column)
        points = [("calibrated", gate["calibrated"])] + [
            (f"{p['target_rate']:.0%}", p) for p in gate["rates"]
        ]
        for label, p in points:
            buyer.add_row(
                label,
                f"{p['realized_rate']:.0%}",
                *(f"{p['quality'][m]:.4f}" for m in ("rouge1", "rouge2", "rougeL")),
                f"{p['share_of_large']:.1%}",
                f"{p['cost_per_job']:.6f}",
                f"{p['relative_cost']:.1%}",
            )
        console.print(buyer)
    lo, hi = report.cost_range
    console.print(
        f"cost per meeting: USD {lo:.6f} (always small) to {hi:.6f} (small + large); best score: {report.best}"
    )
    console.print(f"wrote {path} and its plots")
