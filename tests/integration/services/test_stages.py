"""The four stages as plain functions, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.gate.stage import gate_job
from services.ingest.stage import ingest_job
from services.large.stage import summarize_large_job
from services.small.stage import summarize_job
from shared.db import ledger
from shared.db import repository as repo
from shared.db.session import session_scope
from tests.factories import BAD_INPUTS, create_job, rows, view


def test_accepted_job_runs_three_stages_and_records_their_costs(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="0")
    job_id = create_job(pipeline)

    assert ingest_job(job_id).forward == [job_id]
    assert summarize_job(job_id).forward == [job_id]
    assert gate_job(job_id).forward == []  # accepted: nothing to enqueue

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
    assert ingest_job(job_id).forward and summarize_job(job_id).forward
    assert gate_job(job_id).forward == [job_id]
    summarize_large_job(job_id)

    job = view(pipeline, job_id)
    assert (job.status, job.tier) == ("done", "large")
    assert [s.stage for s in job.stages] == ["ingest", "small", "gate", "large"]
    assert job.gate.decision == "escalate" and job.gate.score < job.gate.threshold
    assert sorted(t for t, _ in rows(pipeline, job_id)["summaries"]) == ["large", "small"]


def test_the_stage_that_ends_a_job_with_a_webhook_announces_it(pipeline, configure) -> None:
    """A stage hands the jobs it ended with a webhook due to its task (StageOutcome.announce), which sends them to
    notify after the commit; a job without a webhook, or one only moved on, is not announced."""
    configure(RECAP_GATE_THRESHOLD="0")
    hook = {"webhook_url": "https://example.com/hook"}
    hooked, plain = create_job(pipeline, **hook), create_job(pipeline)
    for job_id in (hooked, plain):
        assert ingest_job(job_id).announce == [] and summarize_job(job_id).announce == []
    assert gate_job(hooked).announce == [hooked]
    assert gate_job(plain).announce == []
    rejected = create_job(pipeline, raw=b"", **hook)
    assert ingest_job(rejected).announce == [rejected]
    assert view(pipeline, rejected).error.code == "empty_file"


@pytest.mark.parametrize(("raw", "options", "code"), BAD_INPUTS)
def test_bad_input_rejects_the_job_with_its_code_and_keeps_it_queryable(
    pipeline, configure, raw, options, code
) -> None:
    configure(RECAP_MAX_TRANSCRIPT_BYTES="10000", RECAP_MAX_TURNS="100")
    job_id = create_job(pipeline, raw=raw, requested_format=options.get("format"))
    assert ingest_job(job_id).forward == []

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
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
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
    assert ingest_job(job_id).forward and summarize_job(job_id).forward
    gate_job(job_id)
    job = view(pipeline, job_id)
    assert (job.status, job.error) == ("done", None)
    assert job.summary and job.truncation_ratio == 0.0


def test_an_unloadable_model_fails_the_job_plainly(pipeline, configure, tmp_path) -> None:
    configure(RECAP_SMALL_MODEL=str(tmp_path / "no-such-model"), HF_HUB_OFFLINE="1")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward
    assert summarize_job(job_id).forward == []

    job = view(pipeline, job_id)
    assert job.status == "failed" and job.error.code == "model_unavailable"
    assert "no-such-model" in job.error.message


def test_job_cost_is_the_sum_of_its_ledger(pipeline, configure) -> None:
    configure(RECAP_GATE_THRESHOLD="0")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward
    gate_job(job_id)
    with session_scope(pipeline) as session:
        total = ledger.job_cost(session, job_id=job_id)
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
    assert ingest_job(poison).forward == []  # returns normally: nothing escapes the stage, nothing goes on
    job = view(pipeline, poison)
    assert (job.status, job.error.code) == ending

    healthy = create_job(pipeline)
    assert ingest_job(healthy).forward == [healthy] and summarize_job(healthy).forward == [healthy]


def test_the_large_workers_batch_task_ends_its_jobs_without_an_error(pipeline, configure) -> None:
    """The task as the worker runs it (celery-batches hands it the batch's requests): the large stage hands
    nothing on, and asking for its next task used to raise after every batch."""
    from celery_batches import SimpleRequest

    from services.large.tasks import run

    configure(RECAP_GATE_THRESHOLD="1.01")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
    request = SimpleRequest(
        "task-1", "large.run", (), {"job_id": str(job_id)}, {}, "host", True, None, None, {}
    )
    run([request])  # returns normally
    assert view(pipeline, job_id).status == "done"
