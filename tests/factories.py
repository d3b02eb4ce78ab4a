"""Test data: jobs stored the way `recap submit` stores them, and meetings as transcript files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sqlmodel import select

from shared.db import repository as repo
from shared.db.models import GateDecision, Job, StageRun, Summary
from shared.db.session import session_scope

MEETING = b"Ann: we ship on Friday.\nBo: only if QA passes.\nAnn: agreed, Bo owns QA.\n"


def create_job(url: str, raw: bytes = MEETING, tenant: str = "t1") -> uuid.UUID:
    with session_scope(url) as session:
        return repo.create_job(session, raw=raw, tenant=tenant, source_name="meeting.txt").id


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
            "runs": [(r.stage, r.attempt, r.deliveries, r.cost_usd, r.seconds) for r in runs],
            "summaries": sorted((s.tier, s.text) for s in summaries),
            "decision": (decision.decision, decision.score, decision.threshold) if decision else None,
        }


def write_meeting(folder: Path, meeting: dict[str, Any]) -> Path:
    path = folder / f"{meeting['id']}.json"
    path.write_text(json.dumps({"turns": meeting["turns"]}))
    return path
