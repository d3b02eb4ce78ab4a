"""Never an empty summary called done: the gate escalates an empty small summary whatever its scores say, and a
job whose final summary is empty fails with `empty_summary`. Real random-weight models that can only emit EOS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from services.gate.stage import gate_job
from services.ingest.stage import ingest_job
from services.large.stage import summarize_large_job
from services.small.stage import summarize_job
from shared.db import repository as repo
from shared.db import views
from shared.db.session import session_scope
from tests.factories import create_job


def mute(folder: Path, out: Path) -> Path:
    """A copy of a test model whose generation config suppresses every token but EOS: it writes nothing."""
    shutil.copytree(folder, out)
    path = out / "generation_config.json"
    config = json.loads(path.read_text())
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    config["suppress_tokens"] = [t for t in range(vocab) if t != config["eos_token_id"]]
    config["min_new_tokens"] = None
    path.write_text(json.dumps(config))
    return out


@pytest.fixture
def mute_models(test_models, tmp_path) -> tuple[Path, Path]:
    return mute(test_models[0], tmp_path / "mute-small"), mute(test_models[1], tmp_path / "mute-large")


def view(url, job_id):
    with session_scope(url) as session:
        return views.job_view(session, job_id=job_id)


def test_an_empty_small_summary_escalates_however_sure_its_scores(pipeline, mute_models, configure) -> None:
    configure(RECAP_SMALL_MODEL=str(mute_models[0]), RECAP_GATE_THRESHOLD="0")  # 0: no score escalates
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward
    with session_scope(pipeline) as session:
        small = repo.get_summary(session, job_id=job_id, tier="small")
        assert small is not None and small.text == "" and small.scores is not None
        assert small.scores["mean_margin"] == pytest.approx(1.0)  # EOS was its only choice: "sure"
    assert gate_job(job_id).forward == [job_id]
    job = view(pipeline, job_id)
    assert job.gate.decision == "escalate" and "empty small summary" in job.gate.reason
    summarize_large_job(job_id)
    job = view(pipeline, job_id)
    assert (job.status, job.tier) == ("done", "large") and job.summary


def test_an_empty_final_summary_fails_the_job(pipeline, mute_models, configure) -> None:
    configure(RECAP_SMALL_MODEL=str(mute_models[0]), RECAP_LARGE_MODEL=str(mute_models[1]))
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward and gate_job(job_id).forward
    summarize_large_job(job_id)
    job = view(pipeline, job_id)
    assert (job.status, job.error.code, job.summary) == ("failed", "empty_summary", None)
    assert "large model wrote an empty summary" in job.error.message


def test_an_empty_small_summary_is_not_kept_when_the_budget_is_spent(
    pipeline, mute_models, configure
) -> None:
    configure(RECAP_SMALL_MODEL=str(mute_models[0]), RECAP_BUDGET_USD="0")
    job_id = create_job(pipeline)
    assert ingest_job(job_id).forward and summarize_job(job_id).forward
    assert gate_job(job_id).forward == []  # the escalation is refused, and the small summary is empty
    job = view(pipeline, job_id)
    assert (job.status, job.error.code) == ("failed", "empty_summary")
