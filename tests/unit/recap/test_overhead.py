"""The overhead breakdown's arithmetic, on a hand-made job whose stage timestamps are known."""

from datetime import UTC, datetime, timedelta

import pytest

from recap.benchmarks.overhead import overhead_ms, stage_breakdown
from shared.schemas import JobView, StageView

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def run(stage: str, start: float, end: float, work_ms: float) -> StageView:
    return StageView(
        stage=stage, model=None, device=None, input_tokens=0, output_tokens=0, seconds=work_ms / 1000,
        batch_size=1, deliveries=1, cost_usd=0.0, started_at=at(start), finished_at=at(end),
    )  # fmt: skip


def test_each_stage_splits_into_queue_database_and_work() -> None:
    job = JobView(
        job_id="j", tenant="t", status="done", tier="small", summary="s", source=None, source_format="txt",
        summary_length="medium", created_at=T0, finished_at=at(100),
        stages=[run("ingest", 5, 9, 1), run("small", 15, 70, 50), run("gate", 80, 98, 2)],
    )  # fmt: skip
    parts = stage_breakdown([job])
    assert parts["ingest"] == pytest.approx({"queue": 5, "database": 3, "work": 1})
    assert parts["small"] == pytest.approx({"queue": 6, "database": 5, "work": 50})
    assert parts["gate"] == pytest.approx({"queue": 10, "database": 16, "work": 2})
    assert parts["end"] == pytest.approx({"queue": 2})
    assert overhead_ms(job) == pytest.approx(100 - 50)  # the latency less the small model's own seconds
