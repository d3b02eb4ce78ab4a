"""The four stages as plain functions, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlmodel import select

from services.gate.stage import gate_job
from services.ingest.stage import ingest_job
from services.large.stage import summarize_large_job
from services.small.stage import summarize_job, summarize_jobs
from shared.db import repository as repo
from shared.db import views
from shared.db.models import Job, ModelCall
from shared.db.session import session_scope
from shared.lifecycle import claim
from shared.stages import Stage
from tests.factories import BAD_INPUTS, create_job, rows


def HELD(session, job):  # noqa: N802  (a claim that loads nothing: the job row is enough)
    return job


def view(url, job_id):
    with session_scope(url) as session:
        return views.job_view(session, job_id=job_id)


def test_accepted_job_runs_three_stages_and_records_their_costs(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="0")
    job_id = create_job(pipeline)

    assert ingest_job(job_id) is True
    assert summarize_job(job_id) is True
    assert gate_job(job_id) is False  # accepted: nothing to enqueue

    job = view(pipeline, job_id)
    assert (job.status, job.tier, job.error) == ("done", "small", None)
    assert job.summary is not None and job.source_format == "txt"
    assert [s.stage for s in job.stages] == ["ingest", "small", "gate"]
    small = job.stages[1]
    assert small.input_tokens > 10 and small.output_tokens >= 1 and small.seconds > 0
    assert small.cost_usd > 0
    assert job.cost_usd == pytest.approx(sum(s.cost_usd for s in job.stages))
    assert job.gate.decision == "accept" and job.gate.score >= job.gate.threshold == 0


def test_escalated_job_gets_the_large_summary_and_its_cost(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id)
    assert gate_job(job_id) is True
    summarize_large_job(job_id)

    job = view(pipeline, job_id)
    assert (job.status, job.tier) == ("done", "large")
    assert [s.stage for s in job.stages] == ["ingest", "small", "gate", "large"]
    assert job.gate.decision == "escalate" and job.gate.score < job.gate.threshold
    assert sorted(t for t, _ in rows(pipeline, job_id)["summaries"]) == ["large", "small"]


def budget_rows(url, job_id):
    from sqlmodel import select

    from shared.db.models import BudgetReservation, BudgetSpend

    with session_scope(url) as session:
        reservation = session.get(BudgetReservation, job_id)
        spend = {s.scope: Decimal(s.spent_usd) for s in session.exec(select(BudgetSpend)).all()}
        return (reservation.amount_usd, reservation.settled) if reservation else None, spend


def test_an_escalation_reserves_its_budget_and_settles_to_the_real_cost(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_BUDGET_USD="1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id) and gate_job(job_id)
    reservation, spend = budget_rows(pipeline, job_id)
    assert reservation == (Decimal("0.25"), False)
    assert spend == {"global": Decimal("0.25"), "tenant:t1": Decimal("0.25")}

    summarize_large_job(job_id)
    large_cost = Decimal(str(next(s.cost_usd for s in view(pipeline, job_id).stages if s.stage == "large")))
    reservation, spend = budget_rows(pipeline, job_id)
    assert 0 < large_cost < Decimal("0.25")
    assert reservation == (pytest.approx(large_cost), True)
    assert spend["global"] == spend["tenant:t1"] == pytest.approx(large_cost)


def test_an_escalation_that_fails_gives_its_reservation_back(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_TENANT_BUDGET_USD="1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id) and gate_job(job_id)
    configure(RECAP_LARGE_MODEL="/nonexistent/model")  # the large stage cannot run
    summarize_large_job(job_id)

    job = view(pipeline, job_id)
    assert (job.status, job.error.code) == ("failed", "model_unavailable")
    reservation, spend = budget_rows(pipeline, job_id)
    assert reservation == (Decimal(0), True) and spend == {"global": 0, "tenant:t1": 0}


def test_a_spent_budget_degrades_the_job_to_its_small_summary(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_TENANT_BUDGET_USD="0.1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id)
    assert gate_job(job_id) is False  # nothing for the large model

    job = view(pipeline, job_id)
    assert (job.status, job.tier, job.error.code) == ("degraded", "small", "tenant_budget_spent")
    assert job.summary and "tenant 't1'" in job.error.message and "USD 0.1" in job.error.message
    assert job.gate.decision == "degraded" and "budget" in job.gate.reason
    assert budget_rows(pipeline, job_id) == ((0, True), {"global": 0, "tenant:t1": 0})  # refused, kept


def test_a_job_reserves_once_however_often_it_is_delivered(db_url) -> None:
    from datetime import UTC, datetime

    from shared.db import budget

    job_id, other, period = create_job(db_url), create_job(db_url), datetime(2026, 11, 21, tzinfo=UTC)
    limits = {"global": Decimal("1"), "tenant:t1": None}
    for _ in range(3):  # a duplicate delivery of the gate task reserves nothing more
        with session_scope(db_url) as session:
            refusal = budget.reserve(
                session, job_id=job_id, tenant="t1", period=period, amount=Decimal("0.4"), limits=limits
            )
        assert refusal is None
    with session_scope(db_url) as session:
        assert budget.spent(session, scope="global", period=period) == Decimal("0.4")
        # Another job no longer fits under the limit: refused with the scope, its limit and what is spent.
        refusal = budget.reserve(
            session, job_id=other, tenant="t1", period=period, amount=Decimal("0.7"), limits=limits
        )
        assert refusal == budget.Refusal("global", Decimal("1"), Decimal("0.4"))
        assert budget.spent(session, scope="tenant:t1", period=period) == Decimal("0.4")


def test_a_redelivered_message_changes_nothing(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="1.01")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id) and gate_job(job_id)
    summarize_large_job(job_id)
    before = rows(pipeline, job_id)

    # Every stage delivered again after the job ended: all are skipped, nothing is added or moved.
    assert ingest_job(job_id) is False
    assert summarize_job(job_id) is False
    assert gate_job(job_id) is False
    summarize_large_job(job_id)

    assert rows(pipeline, job_id) == before
    assert [(r[2], r[5]) for r in before["runs"]] == [(1, "ok")] * 4


def test_a_stage_redelivered_mid_run_bills_each_attempt_in_its_own_row(pipeline) -> None:
    job_id = create_job(pipeline)
    assert claim(job_id, Stage.INGEST, HELD) is not None  # a worker took it, then died before finishing
    assert ingest_job(job_id) is True  # the redelivery does the work once more

    runs = rows(pipeline, job_id)["runs"]
    # The dead attempt keeps its row (closed as interrupted, its seconds so far); the new one is the result.
    assert [(stage, attempt, deliveries, outcome) for stage, attempt, deliveries, _, _, outcome in runs] == [
        ("ingest", 1, 1, "interrupted"),
        ("ingest", 2, 2, "ok"),
    ]
    assert rows(pipeline, job_id)["status"] == "summarizing"
    assert summarize_job(job_id) is True  # and the job carries on normally


def test_a_duplicate_that_finishes_second_is_billed_as_superseded_and_moves_nothing(pipeline) -> None:
    job_id = create_job(pipeline)
    assert ingest_job(job_id) is True
    assert claim(job_id, Stage.SMALL, HELD) is not None  # a slow first delivery, still running
    assert summarize_job(job_id) is True  # a duplicate claims it again and finishes first

    runs = [(stage, attempt, outcome) for stage, attempt, _, _, _, outcome in rows(pipeline, job_id)["runs"]]
    assert runs == [("ingest", 1, "ok"), ("small", 1, "interrupted"), ("small", 2, "ok")]
    assert [r for r in runs if r[2] == "ok" and r[0] == "small"] == [("small", 2, "ok")]  # billed once


def test_a_stage_that_keeps_dying_is_dead_lettered(pipeline, configure) -> None:
    configure(RECAP_MAX_DELIVERIES="2")
    job_id = create_job(pipeline)
    assert claim(job_id, Stage.INGEST, HELD) is not None
    assert claim(job_id, Stage.INGEST, HELD) is not None
    assert claim(job_id, Stage.INGEST, HELD) is None

    job = view(pipeline, job_id)
    assert job.status == "failed" and job.error.code == "redelivery_limit"
    assert ingest_job(job_id) is False  # an ended job is never worked on again


@pytest.mark.parametrize(("raw", "options", "code"), BAD_INPUTS)
def test_bad_input_rejects_the_job_with_its_code_and_keeps_it_queryable(
    pipeline, configure, raw, options, code
) -> None:
    configure(RECAP_MAX_TRANSCRIPT_BYTES="10000", RECAP_MAX_TURNS="100")
    job_id = create_job(pipeline, raw=raw, requested_format=options.get("format"))
    assert ingest_job(job_id) is False

    job = view(pipeline, job_id)
    assert job.status == "rejected"
    assert job.error.code == code and len(job.error.message) > 20
    assert job.finished_at is not None
    assert [(s.stage, s.cost_usd) for s in job.stages] == [("ingest", 0.0)]  # claimed, never priced


def test_a_long_meeting_is_chunked_by_both_tiers_and_read_whole(pipeline, configure, dev_meetings) -> None:
    configure(
        RECAP_GATE_THRESHOLD="1.01",
        RECAP_SMALL_MAX_INPUT_TOKENS="512",
        RECAP_LARGE_MAX_INPUT_TOKENS="1024",
        RECAP_CHUNK_SUMMARY_TOKENS="16",
    )
    meeting = max(dev_meetings, key=lambda m: m["n_words"])
    job_id = create_job(
        pipeline, raw=json.dumps({"turns": meeting["turns"]}).encode(), summary_length="short"
    )
    assert ingest_job(job_id) and summarize_job(job_id) and gate_job(job_id)
    summarize_large_job(job_id)

    job = view(pipeline, job_id)
    assert (job.status, job.tier, job.summary_length) == ("done", "large", "short")
    small, large = job.summaries
    assert (small.tier, large.tier) == ("small", "large")
    assert small.chunks > large.chunks > 1  # the large window is twice the small one
    assert small.truncation_ratio == large.truncation_ratio == 0.0
    assert small.calls > small.chunks and small.levels >= 2
    assert (job.chunks, job.truncation_ratio) == (large.chunks, 0.0)  # the tier the job ended with
    with session_scope(pipeline) as session:
        scores = repo.get_summary(session, job_id=job_id, tier="small").scores
    assert scores["chunks"] == small.chunks and scores["calls"] == small.calls
    # Every chunk call was paid for, over however many slices (RECAP_SLICE_S each) the small stage took.
    assert sum(s.input_tokens for s in job.stages if s.stage == "small") > 20_000


@pytest.mark.parametrize(
    "raw",
    [
        ("Ann: " + "word " * 30_000).encode(),
        "".join(f"Speaker {i}: point {i}.\n" for i in range(5_000)).encode(),
        "Ann: 🎉🚀 shipped!\nمحمد: نعم، تم الإطلاق\nנועה: מעולה, תודה\n".encode(),
        b"Ann: just me, talking to myself about the plan.\n",
    ],
    ids=["30k-word-line", "5000-speakers", "emoji-and-rtl", "one-speaker"],
)
def test_strange_but_valid_transcripts_are_summarized(pipeline, configure, raw) -> None:
    configure(RECAP_GATE_THRESHOLD="0", RECAP_SMALL_MAX_INPUT_TOKENS="2048")
    job_id = create_job(pipeline, raw=raw)
    assert ingest_job(job_id) and summarize_job(job_id)
    gate_job(job_id)
    job = view(pipeline, job_id)
    assert (job.status, job.error) == ("done", None)
    assert job.summary and job.truncation_ratio == 0.0


def test_an_unloadable_model_fails_the_job_plainly(pipeline, configure, tmp_path) -> None:
    configure(RECAP_SMALL_MODEL=str(tmp_path / "no-such-model"), HF_HUB_OFFLINE="1")
    job_id = create_job(pipeline)
    assert ingest_job(job_id)
    assert summarize_job(job_id) is False

    job = view(pipeline, job_id)
    assert job.status == "failed" and job.error.code == "model_unavailable"
    assert "no-such-model" in job.error.message


def test_job_cost_is_the_sum_of_its_ledger(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="0")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id)
    gate_job(job_id)
    with session_scope(pipeline) as session:
        total = repo.job_cost(session, job_id=job_id)
    assert total == sum((r[3] for r in rows(pipeline, job_id)["runs"]), Decimal(0)) > 0


POISON = {  # raw bytes -> how the job ends
    # Past any recursion limit: refused by the reader, not a crash.
    "nested-json": (b'{"turns": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", ("rejected", "malformed_json")),
    "50k-and-one-turns": (
        "\n".join(f"S{i % 3}: point {i}" for i in range(50_001)).encode(),
        ("rejected", "too_many_turns"),
    ),
    "nul-bytes": (b"A: hi\x00\x00\nB: \x00" * 1000, ("rejected", "binary_file")),
}


@pytest.mark.parametrize(("raw", "ending"), POISON.values(), ids=POISON.keys())
def test_poison_input_ends_its_own_job_with_a_code_and_the_next_job_runs(pipeline, raw, ending) -> None:
    poison = create_job(pipeline, raw=raw)
    assert ingest_job(poison) is False  # returns normally: nothing escapes the stage, nothing goes on
    job = view(pipeline, poison)
    assert (job.status, job.error.code) == ending

    healthy = create_job(pipeline)
    assert ingest_job(healthy) is True and summarize_job(healthy) is True


def test_the_budget_pays_for_every_large_attempt_not_only_the_last(pipeline, configure) -> None:
    from sqlalchemy import update

    from shared.db.models import StageRun

    configure(RECAP_GATE_THRESHOLD="1.01", RECAP_BUDGET_USD="1", RECAP_GATE_LARGE_COST_USD="0.25")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id) and gate_job(job_id)
    assert claim(job_id, Stage.LARGE, HELD) is not None  # an attempt that spent money, then its worker died
    with session_scope(pipeline) as session:
        session.connection().execute(
            update(StageRun).where(StageRun.job_id == job_id, StageRun.stage == "large").values(cost_usd=0.05)
        )
    summarize_large_job(job_id)  # the next attempt finishes the job

    large = [r for r in rows(pipeline, job_id)["runs"] if r[0] == "large"]
    assert [(r[1], r[5]) for r in large] == [(1, "interrupted"), (2, "ok")]
    total = sum((Decimal(str(r[3])) for r in large), Decimal(0))
    reservation, spend = budget_rows(pipeline, job_id)
    assert total > Decimal("0.05")
    assert reservation == (pytest.approx(total), True)
    assert spend["global"] == spend["tenant:t1"] == pytest.approx(total)


def test_a_settled_reservation_is_trued_up_to_a_later_cost(db_url) -> None:
    from datetime import UTC, datetime

    from shared.db import budget

    job_id, period = create_job(db_url), datetime(2026, 11, 21, tzinfo=UTC)
    with session_scope(db_url) as session:
        limits: dict[str, Decimal | None] = {"global": None, "tenant:t1": None}
        budget.reserve(
            session, job_id=job_id, tenant="t1", period=period, amount=Decimal("0.2"), limits=limits
        )
    for cost in (Decimal("0.05"), Decimal("0.08"), Decimal("0.08")):  # a late attempt priced after settling
        with session_scope(db_url) as session:
            budget.settle(session, job_id=job_id, cost=cost)
    with session_scope(db_url) as session:
        assert budget.spent(session, scope="global", period=period) == Decimal("0.08")
        assert budget.spent(session, scope="tenant:t1", period=period) == Decimal("0.08")


def test_the_large_workers_batch_task_ends_its_jobs_without_an_error(pipeline, configure) -> None:
    """The task as the worker runs it (celery-batches hands it the batch's requests): the large stage hands
    nothing on, and asking for its next task used to raise after every batch."""
    from celery_batches import SimpleRequest

    from services.large.tasks import run

    configure(RECAP_GATE_THRESHOLD="1.01")
    job_id = create_job(pipeline)
    assert ingest_job(job_id) and summarize_job(job_id) and gate_job(job_id)
    request = SimpleRequest(
        "task-1", "large.run", (), {"job_id": str(job_id)}, {}, "host", True, None, None, {}
    )
    run([request])  # returns normally
    assert view(pipeline, job_id).status == "done"


def test_a_delivery_taken_for_dead_that_finishes_first_is_the_billed_result(pipeline) -> None:
    """A slow worker's claim is taken over (its row closed `interrupted`), but it finishes and moves the job
    first: its attempt is the result, billed `ok`; the takeover's attempt is superseded. Exactly one `ok`."""
    from shared.lifecycle import advance
    from shared.schemas import Usage

    job_id = create_job(pipeline)
    assert ingest_job(job_id) is True
    assert claim(job_id, Stage.SMALL, HELD) is not None  # the slow first delivery (attempt 1)
    with session_scope(pipeline) as session:  # a takeover claims it: attempt 1 is closed `interrupted`
        repo.open_attempt(session, job_id=job_id, stage="small", since=None)
    usage = Usage(model="m", device="cpu", input_tokens=10, output_tokens=5, seconds=1.0, batch_size=1)
    with session_scope(pipeline) as session:
        assert advance(session, job_id=job_id, stage=Stage.SMALL, usage=usage) is True  # attempt 1 moves it

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
    assert ingest_job(whole_id) and ingest_job(sliced_id)
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
    assert all(ingest_job(job_id) for job_id in (long_id, first, second))
    assert summarize_jobs([long_id]).again == [long_id]  # its first slice: it has calls kept now
    waited = summarize_jobs([long_id, first])
    assert (waited.again, waited.forward) == ([long_id], [first])  # it waited: the new job went alone
    worked = summarize_jobs([long_id, second])
    assert (worked.again, worked.forward) == ([long_id], [second])  # not twice in a row: it worked
    small = [s for s in view(pipeline, long_id).stages if s.stage == "small"]
    assert [s.outcome for s in small] == ["yielded"] * 3
    assert [s.input_tokens > 0 for s in small] == [True, False, True]
