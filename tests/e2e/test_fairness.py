"""Fair sharing of the model workers on `recap up` (PostgreSQL, Redis, real workers): a long job from tenant A is
summarized in slices, and 12 short jobs from tenant B submitted while it runs finish before it does instead of
waiting behind it. (The time figure, 12 short jobs behind a 4.9 MB one against alone, is `recap bench-fairness`'s.)"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlmodel import col, select

from shared.db.models import Job, StageRun
from shared.db.session import session_scope
from shared.states import JobStatus

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

ENDED = {"done", "degraded", "rejected", "failed"}


def yielded(url: str, job_id: str) -> int:
    with session_scope(url) as session:
        runs = session.exec(
            select(StageRun).where(StageRun.job_id == uuid.UUID(job_id), StageRun.stage == "small")
        ).all()
        return sum(1 for run in runs if run.outcome == "yielded")


def test_short_jobs_from_another_tenant_finish_before_a_long_job_they_came_after(
    start_stack, pg_url, redis_url
) -> None:
    stack = start_stack(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        RECAP_SLICE_S="0",  # each visit of the long job makes one batch of calls
        RECAP_SMALL_BATCH_SIZE="2",
        RECAP_MAX_CHUNKS="64",
        RECAP_GATE_THRESHOLD="0",
    )
    keys = {
        t: json.loads(stack.recap("tenants", "create", t, "--json").stdout)["api_key"] for t in ("a", "b")
    }
    long = [
        {
            "speaker": ("Ann", "Bo", "Cy")[i % 3],
            "text": f"Item {i}: we moved the launch review and the budget for team {i}.",
        }
        for i in range(3000)
    ]
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        auth = {t: {"Authorization": f"Bearer {key}"} for t, key in keys.items()}
        big = client.post("/v1/jobs", json={"turns": long}, headers=auth["a"]).json()["job_id"]
        deadline = time.monotonic() + 120
        while (
            yielded(stack.settings.database_url, big) == 0
        ):  # its first slice is done: it is being worked on
            assert time.monotonic() < deadline, "the long job never got a slice"
            time.sleep(0.1)
        shorts = [
            client.post(
                "/v1/jobs",
                json={"turns": [{"speaker": "Dee", "text": f"Item {n}: we ship on day {n % 5}."}]},
                headers=auth["b"],
            ).json()["job_id"]
            for n in range(12)
        ]
        deadline = time.monotonic() + 300
        while True:
            with session_scope(stack.settings.database_url) as session:
                jobs = {
                    str(j.id): j for j in session.exec(select(Job).where(col(Job.tenant).in_(["a", "b"])))
                }
            if all(jobs[j].status in ENDED for j in [big, *shorts]):
                break
            assert time.monotonic() < deadline, {j.status for j in jobs.values()}
            time.sleep(0.5)
    assert jobs[big].status == JobStatus.DONE and all(jobs[j].status == JobStatus.DONE for j in shorts)
    last_short = max(jobs[j].finished_at for j in shorts)
    assert last_short < jobs[big].finished_at  # none of them waited for the long job to end
    assert yielded(stack.settings.database_url, big) >= 5  # it went to the back of the queue, slice by slice
