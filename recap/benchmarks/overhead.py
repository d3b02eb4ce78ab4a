"""What the pipeline costs around the model, per job and per stage, read from the jobs' own ledgers."""

from __future__ import annotations

import statistics

from shared.schemas import JobView
from shared.stages import Stage


def overhead_ms(view: JobView) -> float:
    """A job's end-to-end latency minus its small model's seconds: what the pipeline adds around the model."""
    assert view.finished_at is not None
    model_s = next(s.seconds for s in view.stages if s.stage == Stage.SMALL)
    return ((view.finished_at - view.created_at).total_seconds() - model_s) * 1000


def stage_breakdown(views: list[JobView]) -> dict[str, dict[str, float]]:
    """Median milliseconds per stage, from the ledger's timestamps: `queue` from the previous stage's cost record
    (or the job's creation) to this stage's claim (its commit, the broker hop, the worker's pickup); `database`
    from the claim to the cost record, less the work (the claim, load and save transactions, bookkeeping);
    `work` the stage's own seconds (parsing, the model, the gate's decision). `end` is the last record to the
    job's end (the final commit)."""
    parts: dict[str, dict[str, list[float]]] = {}
    for view in views:
        assert view.finished_at is not None
        previous = view.created_at
        for run in view.stages:
            assert run.started_at is not None and run.finished_at is not None
            span = (run.finished_at - run.started_at).total_seconds()
            got = parts.setdefault(run.stage, {"queue": [], "database": [], "work": []})
            got["queue"].append((run.started_at - previous).total_seconds() * 1000)
            got["database"].append((span - run.seconds) * 1000)
            got["work"].append(run.seconds * 1000)
            previous = run.finished_at
        parts.setdefault("end", {"queue": []})["queue"].append(
            (view.finished_at - previous).total_seconds() * 1000
        )
    return {stage: {k: statistics.median(v) for k, v in got.items()} for stage, got in parts.items()}
