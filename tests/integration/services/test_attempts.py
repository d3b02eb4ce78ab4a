"""Redelivered, duplicated and interrupted stage runs, on SQLite and on the real PostgreSQL: each attempt billed in
its own ledger row, one result, a stage that keeps dying dead-lettered, long jobs in slices."""

from __future__ import annotations

import pytest
from sqlmodel import select

from services.gate.stage import gate_job
from services.ingest.stage import ingest_job
from services.large.stage import summarize_large_job
from services.small.stage import summarize_job, summarize_jobs
from shared.db import ledger
from shared.db.models import Job, ModelCall
from shared.db.session import session_scope
from shared.lifecycle import claim
from shared.stages import Stage
from tests.factories import HELD, create_job, rows, view


def test_a_redelivered_message_changes_nothing(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
    summarize_large_job(job_id)
    before = rows(pipeline, job_id)

    # Every stage delivered again after the job ended: all are skipped, nothing is added or moved.
    assert ingest_job(job_id).forward == []
    assert summarize_job(job_id).forward == []
    assert gate_job(job_id).forward == []
    summarize_large_job(job_id)

    assert rows(pipeline, job_id) == before
    assert [(r[2], r[5]) for r in before["runs"]] == [(1, "ok")] * 4


def test_a_stage_redelivered_mid_run_bills_each_attempt_in_its_own_row(pipeline) -> None:
    job_id = create_job(pipeline)
    assert claim(job_id, Stage.INGEST, HELD) is not None  # a worker took it, then died before finishing
    assert ingest_job(job_id).forward == [job_id]  # the redelivery does the work once more

    runs = rows(pipeline, job_id)["runs"]
    # The dead attempt keeps its row (closed as interrupted, its seconds so far); the new one is the result.
    assert [(stage, attempt, deliveries, outcome) for stage, attempt, deliveries, _, _, outcome in runs] == [
        ("ingest", 1, 1, "interrupted"),
        ("ingest", 2, 2, "ok"),
    ]
    assert rows(pipeline, job_id)["status"] == "summarizing"
    assert summarize_job(job_id).forward == [job_id]  # and the job carries on normally


def test_a_duplicate_that_finishes_second_is_billed_as_superseded_and_moves_nothing(pipeline) -> None:
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward == [job_id]
    assert claim(job_id, Stage.SMALL, HELD) is not None  # a slow first delivery, still running
    assert summarize_job(job_id).forward == [job_id]  # a duplicate claims it again and finishes first

    runs = [(stage, attempt, outcome) for stage, attempt, _, _, _, outcome in rows(pipeline, job_id)["runs"]]
    assert runs == [("ingest", 1, "ok"), ("small", 1, "interrupted"), ("small", 2, "ok")]
    assert [r for r in runs if r[2] == "ok" and r[0] == "small"] == [("small", 2, "ok")]  # billed once


def test_a_stage_that_keeps_dying_is_dead_lettered(pipeline, configure) -> None:
    configure(RECAP_MAX_DELIVERIES="2")
    job_id = create_job(pipeline)
    assert claim(job_id, Stage.INGEST, HELD) is not None
    assert claim(job_id, Stage.INGEST, HELD) is not None
    assert ingest_job(job_id).forward == []  # the third delivery, past the limit, ends the job

    job = view(pipeline, job_id)
    assert job.status == "failed" and job.error.code == "redelivery_limit"
    assert ingest_job(job_id).forward == []  # an ended job is never worked on again


def test_a_delivery_taken_for_dead_that_finishes_first_is_the_billed_result(pipeline) -> None:
    """A slow worker's claim is taken over (its row closed `interrupted`), but it finishes and moves the job
    first: its attempt is the result, billed `ok`; the takeover's attempt is superseded. Exactly one `ok`."""
    from shared.lifecycle import Moved, advance
    from shared.schemas import Usage

    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward == [job_id]
    slow = claim(job_id, Stage.SMALL, HELD)  # the slow first delivery
    assert slow is not None and slow.attempt == 1
    with session_scope(pipeline) as session:  # a takeover claims it: attempt 1 is closed `interrupted`
        ledger.open_attempt(session, job_id=job_id, stage="small", since=None)
    usage = Usage(model="m", device="cpu", input_tokens=10, output_tokens=5, seconds=1.0, batch_size=1)
    with session_scope(pipeline) as session:
        assert advance(session, slow, usage) is Moved.ON  # attempt 1 moves it

    runs = [(stage, attempt, outcome) for stage, attempt, _, _, _, outcome in rows(pipeline, job_id)["runs"]]
    assert runs == [("ingest", 1, "ok"), ("small", 1, "ok"), ("small", 2, None)]


LONG = "\n".join(
    f"{('Ann', 'Bo', 'Cy')[i % 3]}: Item {i}: we moved the launch review and checked the budget for team {i}."
    for i in range(150)
).encode()


def test_a_long_job_runs_in_slices_billed_once_and_ends_as_it_would_whole(pipeline, configure) -> None:
    configure(
        RECAP_GATE_THRESHOLD="0",
        RECAP_SMALL_MAX_INPUT_TOKENS="256",
        RECAP_MAX_DELIVERIES="2",
        RECAP_SLICE_S="1000",
    )
    whole_id, sliced_id = create_job(pipeline, LONG), create_job(pipeline, LONG)
    assert ingest_job(whole_id).forward and ingest_job(sliced_id).forward
    assert summarize_jobs([whole_id]).forward == [whole_id]  # in one visit
    configure(RECAP_SLICE_S="0", RECAP_SMALL_BATCH_SIZE="4")  # one batch of new calls per visit
    visits = 0
    while (outcome := summarize_jobs([sliced_id])).again == [sliced_id]:
        visits += 1
        with session_scope(pipeline) as session:
            kept = session.exec(select(ModelCall).where(ModelCall.job_id == sliced_id)).all()
            assert 0 < len(kept) <= 4 * visits
            assert session.get(Job, sliced_id).claimed_by is None  # waiting in the queue, not worked on
    # More visits than RECAP_MAX_DELIVERIES: a slice is progress, not a failed delivery.
    assert outcome.forward == [sliced_id] and visits > 2
    whole, sliced = view(pipeline, whole_id), view(pipeline, sliced_id)
    assert sliced.status == whole.status
    assert rows(pipeline, sliced_id)["summaries"] == rows(pipeline, whole_id)["summaries"]
    assert [(s.chunks, s.calls) for s in sliced.summaries] == [(s.chunks, s.calls) for s in whole.summaries]
    small = [s for s in sliced.stages if s.stage == "small"]
    assert [s.outcome for s in small] == ["yielded"] * visits + ["ok"]
    [whole_small] = [s for s in whole.stages if s.stage == "small"]
    assert sum(s.input_tokens for s in small) == whole_small.input_tokens  # each call billed once
    assert sum(s.output_tokens for s in small) == whole_small.output_tokens
    assert sliced.cost_usd == pytest.approx(sum(s.cost_usd for s in sliced.stages))
    with session_scope(pipeline) as session:  # the kept calls (summaries of its text) are gone
        assert session.exec(select(ModelCall).where(ModelCall.job_id == sliced_id)).all() == []


def test_a_resumed_long_job_waits_once_for_the_new_jobs_of_its_batch(pipeline, configure) -> None:
    configure(
        RECAP_GATE_THRESHOLD="0",
        RECAP_SMALL_MAX_INPUT_TOKENS="256",
        RECAP_SLICE_S="0",
        RECAP_SMALL_BATCH_SIZE="4",
    )
    long_id, first, second = create_job(pipeline, LONG), create_job(pipeline), create_job(pipeline)
    assert all(ingest_job(job_id).forward for job_id in (long_id, first, second))
    assert summarize_jobs([long_id]).again == [long_id]  # its first slice: it has calls kept now
    waited = summarize_jobs([long_id, first])
    assert (waited.again, waited.forward) == ([long_id], [first])  # it waited: the new job went alone
    worked = summarize_jobs([long_id, second])
    assert (worked.again, worked.forward) == ([long_id], [second])  # not twice in a row: it worked
    small = [s for s in view(pipeline, long_id).stages if s.stage == "small"]
    assert [s.outcome for s in small] == ["yielded"] * 3
    assert [s.input_tokens > 0 for s in small] == [True, False, True]
