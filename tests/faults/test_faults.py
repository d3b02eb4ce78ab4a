"""Faults injected into a running stack (`recap up` on a Redis and a PostgreSQL this suite owns, each reached
through a proxy the suite can black-hole): after each, with nothing but the stack's own machinery, every job ends
done (or degraded where the budget says so) within RECOVERY_LIMIT_S of the fault's end (the target, RECOVERY_S, is
reported), and tests/faults/audit.py's
guarantees hold. The scenarios run in this order, the CI's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from shared.failpoints import Point, arm
from tests.blackhole import Blackhole
from tests.e2e.conftest import RECAP
from tests.faults.audit import audit, meetings, now, query, submit, wait_for_claim
from tests.faults.conftest import OwnPostgres, OwnRedis

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

OUTAGE_S = 30


def failpoints(stack) -> Path:
    return Path(stack.env["RECAP_FAILPOINT_DIR"])


def test_killed_between_commit_and_send(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    """The first stage to commit a move exits its process before sending: the outbox row it committed is relayed."""
    fired = arm(failpoints(fault_stack), Point.AFTER_COMMIT, "exit")
    ids = submit(fault_stack, meetings(tmp_path, 12))
    audit(fault_stack, own_postgres.url, "kill -9 between commit and send", ids, None)
    assert fired.exists(), "the fail point never fired: nothing was tested"


@pytest.mark.parametrize(
    ("stage", "status", "jobs"),
    [
        ("small", "summarizing", 24),  # full batches of 8
        ("small", "summarizing", 3),  # a partly filled batch
        ("large", "escalated", 24),
        ("ingest", "ingesting", 48),
        ("gate", "gating", 24),
    ],
    ids=["small-full-batch", "small-partial-batch", "large", "ingest", "gate"],
)
def test_worker_killed_mid_work(
    fault_stack, own_postgres: OwnPostgres, tmp_path: Path, stage, status, jobs
) -> None:
    # Submitted in the background: the first claim in the stage is watched for while the jobs arrive.
    submitting = subprocess.Popen(
        [*RECAP, "submit", *meetings(tmp_path, jobs), "--json"],
        env=fault_stack.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = wait_for_claim(own_postgres.url, None, status)
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the worker process and, for a prefork stage, its whole pool
    killed = now()
    out, _ = submitting.communicate(timeout=300)
    ids = [json.loads(line)["job_id"] for line in out.splitlines() if line.startswith("{")]
    assert len(ids) == jobs
    result = audit(
        fault_stack, own_postgres.url, f"kill -9 the {stage} worker mid-work ({jobs} jobs)", ids, killed
    )
    assert result["interrupted"] >= 1 or stage in ("ingest", "gate")  # a model batch was caught mid-way


def redis_restart(own_redis: OwnRedis) -> None:
    own_redis.kill()
    time.sleep(10)
    own_redis.start()


def postgres_restart(own_postgres: OwnPostgres, stack, tmp_path: Path) -> None:
    own_postgres.stop_immediately()
    down = stack.recap("submit", *meetings(tmp_path / "while-down", 1), "--json")
    assert down.returncode == 3 and "unavailable" in down.stdout, down.stdout + down.stderr
    time.sleep(OUTAGE_S)
    own_postgres.start()


def test_redis_killed_and_restarted_from_its_aof(
    fault_stack, own_redis: OwnRedis, own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    ids = submit(fault_stack, meetings(tmp_path, 60))
    wait_for_claim(own_postgres.url, ids, "summarizing")
    redis_restart(own_redis)
    audit(
        fault_stack, own_postgres.url, "kill -9 Redis, restart from its AOF after 10 s (60 jobs)", ids, now()
    )
    # A partly filled batch after the reconnection: celery-batches' flush timer must have survived it.
    started = now()
    one = submit(fault_stack, meetings(tmp_path / "after", 1))
    audit(fault_stack, own_postgres.url, "one job after the Redis restart", one, started)


def test_postgres_stopped_for_30_seconds(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    ids = submit(fault_stack, meetings(tmp_path, 60))
    wait_for_claim(own_postgres.url, ids, "summarizing")
    postgres_restart(own_postgres, fault_stack, tmp_path)
    audit(fault_stack, own_postgres.url, "PostgreSQL stopped -m immediate for 30 s (60 jobs)", ids, now())


def test_redis_restart_then_postgres_restart(
    fault_stack, own_redis: OwnRedis, own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """The order the CI run that hung had: Redis comes back, then PostgreSQL goes away and comes back."""
    ids = submit(fault_stack, meetings(tmp_path, 60))
    wait_for_claim(own_postgres.url, ids, "summarizing")
    redis_restart(own_redis)
    postgres_restart(own_postgres, fault_stack, tmp_path)
    audit(fault_stack, own_postgres.url, "Redis restarted, then PostgreSQL down 30 s (60 jobs)", ids, now())


@pytest.mark.parametrize("path", ["postgres", "redis"])
def test_network_blackhole_for_30_seconds(
    fault_stack, fault_paths: dict[str, Blackhole], own_postgres: OwnPostgres, tmp_path: Path, path: str
) -> None:
    """The path to a datastore stops forwarding without closing anything: every socket on it waits."""
    ids = submit(fault_stack, meetings(tmp_path, 60))
    wait_for_claim(own_postgres.url, ids, "summarizing")
    with fault_paths[path].holding():
        time.sleep(OUTAGE_S)
    audit(fault_stack, own_postgres.url, f"{path} black-holed for 30 s (60 jobs)", ids, now())


def test_crash_while_ending_a_job(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    """A stage raises inside the job-ending path (as a NameError in end_job once did) after its claim: the job
    is taken again and ends as it should, not left in its stage's status."""
    fired = arm(failpoints(fault_stack), Point.ENDING_JOB, "raise")
    bad = tmp_path / "bad"
    bad.mkdir()
    rejected = []
    for i in range(
        4
    ):  # valid files with nothing to summarize: each is rejected, so each goes through end_job
        (bad / f"empty-{i}.vtt").write_text("WEBVTT\n\n")
        rejected.append(str(bad / f"empty-{i}.vtt"))
    started = now()
    ids = submit(fault_stack, [*meetings(tmp_path, 8), *rejected])
    audit(
        fault_stack,
        own_postgres.url,
        "a crash while ending a job",
        ids,
        started,
        failures={"malformed_vtt": 4},
    )
    assert fired.exists(), "the fail point never fired: nothing was tested"


def test_api_killed_mid_post(fault_stack, own_postgres: OwnPostgres) -> None:
    """The API process dies after writing a job and before committing it: nothing half-made is stored, and the
    client's retry with the same Idempotency-Key gets exactly one job."""
    created = fault_stack.recap("tenants", "create", "faults", "--json")
    assert created.returncode == 0, created.stderr
    headers = {
        "Authorization": f"Bearer {json.loads(created.stdout)['api_key']}",
        "Idempotency-Key": "post-1",
    }
    fired = arm(failpoints(fault_stack), Point.SUBMIT, "exit")
    body = {"turns": [{"speaker": "Ann", "text": "We ship on Friday."}, {"speaker": "Bo", "text": "Agreed."}]}
    with httpx.Client(base_url=fault_stack.api_url, headers=headers, timeout=10) as api:
        with pytest.raises(httpx.TransportError):
            api.post("/v1/jobs", json=body)
        killed = now()
        assert fired.exists()
        assert query(own_postgres.url, "SELECT count(*) FROM job WHERE tenant = 'faults'") == [(0,)]
        deadline = time.monotonic() + 60
        while True:  # the client retries until the restarted API answers
            try:
                answer = api.post("/v1/jobs", json=body)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API was not restarted"
                time.sleep(0.5)
        again = api.post("/v1/jobs", json=body)
    assert answer.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["job_id"] == answer.json()["job_id"]
    ids = [row[0] for row in query(own_postgres.url, "SELECT id::text FROM job WHERE tenant = 'faults'")]
    assert ids == [answer.json()["job_id"]]
    audit(fault_stack, own_postgres.url, "the API killed mid-POST, the client retried", ids, killed)


def test_a_burst_of_2000_jobs(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    ids = submit(fault_stack, meetings(tmp_path, 2000, turns=2))
    assert len(ids) == 2000
    # What is tested is that none is lost: the drain's speed is the machine's (bench-burst measures it).
    audit(fault_stack, own_postgres.url, "a burst of 2,000 jobs at once", ids, None, drain_s=1200)
