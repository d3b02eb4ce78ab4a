"""Micro-batches in the model stages: per-job results as if alone, and per-job fate within a batch."""

from __future__ import annotations

import pytest
from sqlmodel import select

from services.ingest.stage import ingest_job
from services.small.stage import summarize_job, summarize_jobs
from shared.db.models import StageRun, Summary, Transcript
from shared.db.session import session_scope
from shared.lifecycle import claim, load_document
from shared.stages import Stage
from tests.factories import create_job, rows

MEETINGS = [
    b"Ann: we ship on Friday.\nBo: only if QA passes.\n",
    b"Cy: the budget is approved, with a ten percent reserve for the launch campaign.\nDee: noted.\n" * 3,
    b"Eve: one item today.\n",
]


@pytest.fixture
def stage(pipeline):
    return pipeline


def ingested(url: str, raw: bytes):
    job_id = create_job(url, raw=raw)
    assert ingest_job(job_id).forward
    return job_id


def summary_of(url: str, job_id):
    with session_scope(url) as session:
        summary = session.exec(select(Summary).where(Summary.job_id == job_id)).one()
        run = session.exec(select(StageRun).where(StageRun.job_id == job_id, StageRun.stage == "small")).one()
        return summary.text, summary.scores, run.batch_size, run.input_tokens, run.output_tokens


def test_a_batch_gives_every_job_what_it_would_get_alone(stage) -> None:
    batched = [ingested(stage, raw) for raw in MEETINGS]
    alone = [ingested(stage, raw) for raw in MEETINGS]

    outcome = summarize_jobs(batched)
    for job_id in alone:
        assert summarize_job(job_id).forward

    assert outcome.forward == batched and outcome.retry == []
    for b, a in zip(batched, alone, strict=True):
        b_text, b_scores, b_size, *b_tokens = summary_of(stage, b)
        a_text, a_scores, a_size, *a_tokens = summary_of(stage, a)
        assert (b_text, b_tokens) == (a_text, a_tokens)
        assert b_scores == pytest.approx(a_scores, abs=1e-5)
        assert (b_size, a_size) == (3, 1)


def test_duplicates_and_bad_state_in_a_batch_touch_only_their_own_job(stage) -> None:
    good, finished, broken = (ingested(stage, raw) for raw in MEETINGS)
    assert summarize_job(finished).forward  # already summarized: its message in the batch is a duplicate
    before = rows(stage, finished)
    with session_scope(stage) as session:
        session.get(Transcript, broken).turns = None  # a job whose ingested turns went missing

    outcome = summarize_jobs([good, finished, good, broken])

    assert outcome.forward == [good]
    assert rows(stage, finished) == before
    assert rows(stage, good)["status"] == "gating"
    assert [r[2] for r in rows(stage, good)["runs"] if r[0] == "small"] == [1]  # twice in the batch, run once
    assert rows(stage, broken)["status"] == "failed"


def test_a_lost_database_sends_each_job_back_to_the_queue(stage, configure) -> None:
    jobs = [ingested(stage, raw) for raw in MEETINGS[:2]]
    configure(DATABASE_URL="postgresql://postgres@127.0.0.1:1/unreachable")
    outcome = summarize_jobs(jobs)
    assert outcome.retry == jobs and outcome.forward == []

    configure(DATABASE_URL=stage)  # the database is back: the re-sent messages do the work
    assert rows(stage, jobs[0])["status"] == "summarizing"
    assert summarize_jobs(jobs).forward == jobs


def test_a_redelivered_batch_reruns_only_its_unfinished_jobs(stage) -> None:
    done, interrupted = (ingested(stage, raw) for raw in MEETINGS[:2])
    assert summarize_job(done).forward
    assert (
        claim(interrupted, Stage.SMALL, load_document) is not None
    )  # a worker took the batch, then died mid-way

    outcome = summarize_jobs([done, interrupted])  # the broker redelivers the whole batch

    assert outcome.forward == [interrupted]
    attempts = [(r[1], r[2], r[5]) for r in rows(stage, interrupted)["runs"] if r[0] == "small"]
    assert attempts == [(1, 1, "interrupted"), (2, 2, "ok")]
