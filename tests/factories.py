"""Test data: jobs stored the way `recap submit` stores them, and meetings as transcript files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sqlmodel import select

from shared.db import repository as repo
from shared.db import views
from shared.db.models import GateDecision, Job, StageRun, Summary
from shared.db.session import session_scope

# Every kind of bad input, with what forces it (a format override) and the code it must get. The size and turn
# cases assume limits of 10,000 bytes and 100 turns.
BAD_INPUTS = [
    (b"", {}, "empty_file"),
    (b" \n\t\r\n ", {}, "whitespace_only"),
    ("Ann: café".encode("latin-1"), {}, "not_utf8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, "binary_file"),
    (b"Ann: hi\x00there", {}, "binary_file"),
    (b"x" * 10_001, {}, "too_large"),
    (b"WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nhi\n", {}, "malformed_vtt"),
    (b"WEBVTT\n\nNOTE nothing but a note\n", {}, "malformed_vtt"),
    (b"1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03,000 --> 00:00:04\nbye\n", {}, "malformed_srt"),
    (b"Ann: hi", {"format": "srt"}, "malformed_srt"),
    (b'[{"speaker": "Ann", ', {}, "malformed_json"),
    (b'{"segments": 3}', {}, "bad_json_shape"),
    (b'[{"speaker": "Ann"}]', {}, "bad_json_shape"),
    (b'[{"speaker": ["Ann"], "text": "hi"}]', {}, "bad_json_shape"),
    (b'[{"speaker": "Ann", "text": "hi", "start": "noon"}]', {}, "bad_json_shape"),
    (b'[{"speaker": "Ann", "text": "hi", "start": NaN}]', {}, "bad_json_shape"),
    (b'[{"speaker": "Ann", "text": "hi", "start": ' + b"9" * 4_000 + b"}]", {}, "bad_json_shape"),
    (b'[{"speaker": "Ann", "text": "hi", "start": ' + b"9" * 5_000 + b"}]", {}, "malformed_json"),
    (
        b'{"turns": ' + b"[" * 3_000 + b"]" * 3_000 + b"}",
        {},
        "malformed_json",
    ),  # past Python's recursion limit
    (b"Ann: {disfmarker} {vocalsound}\nBo: ... !\n", {}, "no_words"),
    (b"Ann: hi", {"format": "docx"}, "unsupported_format"),
    (b"".join(b"S%d: hi\n" % i for i in range(101)), {}, "too_many_turns"),
]

MEETING = b"Ann: we ship on Friday.\nBo: only if QA passes.\nAnn: agreed, Bo owns QA.\n"


def create_job(url: str, raw: bytes = MEETING, tenant: str = "t1", **options: Any) -> uuid.UUID:
    """A queued job; `options` as repo.create_job takes them (summary_length, requested_format)."""
    with session_scope(url) as session:
        return repo.create_job(session, raw=raw, tenant=tenant, source_name="meeting.txt", **options).id


def HELD(session: Any, job: Any) -> Any:  # noqa: N802  (a claim that loads nothing: the job row is enough)
    return job


def view(url: str, job_id: uuid.UUID) -> Any:
    """The job as the API shows it."""
    with session_scope(url) as session:
        return views.job_view(session, job_id=job_id)


def rows(url: str, job_id: uuid.UUID) -> dict[str, Any]:
    """Everything stored for a job, in a comparable form."""
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        runs = session.exec(select(StageRun).where(StageRun.job_id == job_id).order_by(StageRun.id)).all()
        summaries = session.exec(select(Summary).where(Summary.job_id == job_id)).all()
        decision = session.get(GateDecision, job_id)
        return {
            "status": job.status if job else None,
            "tier": job.tier if job else None,
            "summary": job.summary if job else None,
            "runs": [(r.stage, r.attempt, r.deliveries, r.cost_usd, r.seconds, r.outcome) for r in runs],
            "summaries": sorted((s.tier, s.text) for s in summaries),
            "decision": (decision.decision, decision.score, decision.threshold) if decision else None,
        }


def write_meeting(folder: Path, meeting: dict[str, Any]) -> Path:
    path = folder / f"{meeting['id']}.json"
    path.write_text(json.dumps({"turns": meeting["turns"]}))
    return path


def gating_job(url: str, scores: dict[str, float], tenant: str = "t1") -> uuid.UUID:
    """A job the small model has summarized, with these gate scores, waiting for the gate."""
    from shared.db.models import JobStatus

    with session_scope(url) as session:
        job = repo.create_job(session, raw=MEETING, tenant=tenant, source_name="meeting.txt")
        job.status = JobStatus.GATING
        session.add(job)
        session.flush()
        repo.save_summary(session, job_id=job.id, tier="small", model="small", text="we ship", scores=scores)
        return job.id
