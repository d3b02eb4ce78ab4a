"""Faults injected into a running stack (`recap up` on a Redis and a PostgreSQL this suite owns): after each,
with nothing but the stack's own machinery, every job ends (with a code where it failed), none is stuck, no
attempt has two ledger rows, no job is billed twice for a stage, the budget holds, and the stack still runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis
from kombu.exceptions import OperationalError

from shared.celery_app import create_app
from shared.stages import QUEUES
from tests.e2e.conftest import RECAP
from tests.faults.conftest import LINES, OwnPostgres, OwnRedis

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

TERMINAL = ["done", "degraded", "rejected", "failed"]
BUDGET_USD = 0.5  # RECAP_BUDGET_USD in the suite's environment


def meetings(folder: Path, n: int, turns: int = 6) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        lines = [
            f"{'AB'[t % 2]}: item {i}.{t}: we agreed to ship the release on day {t + i % 7} and test it first."
            for t in range(turns)
        ]
        path = folder / f"meeting-{i:04d}.txt"
        path.write_text("\n".join(lines) + "\n")
        files.append(str(path))
    return files


def submit(stack, files: list[str]) -> list[str]:
    return [row["job_id"] for row in stack.json_lines("submit", *files, "--json")]


def query(url: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql, args).fetchall()


def wait_for_claim(url: str, ids: list[str] | None, status: str, timeout: float = 60) -> int:
    """The pid of a process holding a claim on one of `ids` in `status`, polled as fast as the database answers
    (a partly filled batch of the tiny model holds its claims for well under a second)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT claimed_by FROM job WHERE (%s::uuid[] IS NULL OR id = ANY(%s::uuid[])) AND status = %s "
                "AND claimed_by IS NOT NULL LIMIT 1",
                (ids, ids, status),
            ).fetchone()
            if row:
                return int(row[0].rsplit(":", 1)[1])
    seen = query(url, "SELECT status, count(*) FROM job GROUP BY status")
    raise TimeoutError(f"no job was claimed in {status} within {timeout}s; jobs: {seen}")


def drain(url: str, ids: list[str], started: float, timeout: float = 240) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            left = query(
                url,
                "SELECT count(*) FROM job WHERE id = ANY(%s::uuid[]) AND status <> ALL(%s)",
                ids,
                TERMINAL,
            )
        except psycopg.OperationalError:
            left = [(len(ids),)]  # the database is still coming back
        if left[0][0] == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    stuck = query(url, "SELECT status, count(*) FROM job WHERE id = ANY(%s::uuid[]) GROUP BY status", ids)
    raise AssertionError(f"jobs did not all end within {timeout}s: {stuck}")


def workers_answer(stack, timeout: float = 60) -> None:
    """Every worker answers a ping (restarted ones included), over a fresh connection: a connection from before
    a Redis restart fails once, in this test process only."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(create_app(stack.settings).control.ping(timeout=1.0)) >= len(QUEUES):
                return
        except (redis.ConnectionError, OSError, OperationalError):
            pass
        time.sleep(0.5)
    raise AssertionError("the stack's four workers did not all answer")


def audit(stack, url: str, name: str, ids: list[str], started: float) -> dict[str, int]:
    """Waits for every job to end, checks the guarantees, records the scenario's line."""
    seconds = drain(url, ids, started)
    by_status = dict(
        query(url, "SELECT status, count(*) FROM job WHERE id = ANY(%s::uuid[]) GROUP BY status", ids)
    )
    codes = dict(
        query(
            url,
            "SELECT coalesce(error_code, '-'), count(*) FROM job WHERE id = ANY(%s::uuid[]) AND status = 'failed' "
            "GROUP BY error_code",
            ids,
        )
    )
    duplicated = query(
        url,
        "SELECT job_id, stage, attempt FROM stagerun WHERE job_id = ANY(%s::uuid[]) "
        "GROUP BY job_id, stage, attempt HAVING count(*) > 1",
        ids,
    )
    billed_twice = query(
        url,
        "SELECT job_id, stage FROM stagerun WHERE job_id = ANY(%s::uuid[]) AND outcome = 'ok' "
        "GROUP BY job_id, stage HAVING count(*) > 1",
        ids,
    )
    # A finished job holds exactly one billed result per stage it went through.
    unbilled = query(
        url,
        "SELECT j.id FROM job j WHERE j.id = ANY(%s::uuid[]) AND j.status IN ('done', 'degraded') AND "
        "(SELECT count(DISTINCT stage) FROM stagerun r WHERE r.job_id = j.id AND r.outcome = 'ok') "
        "<> CASE WHEN j.tier = 'large' THEN 4 ELSE 3 END",
        ids,
    )
    interrupted = query(
        url, "SELECT count(*) FROM stagerun WHERE job_id = ANY(%s::uuid[]) AND outcome = 'interrupted'", ids
    )[0][0]
    spent = query(url, "SELECT coalesce(sum(spent_usd), 0) FROM budgetspend WHERE scope = 'global'")[0][0]
    unsent = query(url, "SELECT count(*) FROM outbox WHERE job_id = ANY(%s::uuid[])", ids)[0][0]
    assert stack.proc.poll() is None, "recap up exited"
    workers_answer(stack)

    failed_codes = ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) or "none"
    LINES.append(
        f"{name}: {len(ids)} jobs; done {by_status.get('done', 0)}, degraded {by_status.get('degraded', 0)}, "
        f"rejected {by_status.get('rejected', 0)}, failed {by_status.get('failed', 0)} ({failed_codes}); "
        f"stuck 0; interrupted attempts {interrupted}; duplicated ledger rows {len(duplicated)}; "
        f"billed twice {len(billed_twice)}; budget USD {float(spent):.4f} of {BUDGET_USD}; stack up; "
        f"drained in {seconds:.1f} s"
    )
    assert sum(by_status.values()) == len(ids)
    assert "-" not in codes, "a failed job without a code"
    assert duplicated == [] and billed_twice == [] and unbilled == []
    assert float(spent) <= BUDGET_USD + 1e-9
    assert unsent == 0
    return {"interrupted": interrupted, **by_status}


def test_killed_between_commit_and_send(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    """The stack's first stage commit exits its process before sending (RECAP_CRASH_ONCE_AFTER_COMMIT): the
    outbox row it committed is relayed."""
    flag = Path(fault_stack.env["RECAP_CRASH_ONCE_AFTER_COMMIT"])
    assert not flag.exists()
    started = time.monotonic()
    ids = submit(fault_stack, meetings(tmp_path, 12))
    audit(fault_stack, own_postgres.url, "kill -9 between commit and send", ids, started)
    assert flag.exists(), "the hook never fired: nothing was tested"


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
    started = time.monotonic()
    # Submitted in the background: the first claim in the stage is watched for while the jobs arrive.
    submitting = subprocess.Popen(
        [*RECAP, "submit", *meetings(tmp_path, jobs), "--json"],
        env=fault_stack.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = wait_for_claim(own_postgres.url, None, status)
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the worker process and, for a prefork stage, its whole pool
    out, _ = submitting.communicate(timeout=300)
    ids = [json.loads(line)["job_id"] for line in out.splitlines() if line.startswith("{")]
    assert len(ids) == jobs
    result = audit(
        fault_stack, own_postgres.url, f"kill -9 the {stage} worker mid-work ({jobs} jobs)", ids, started
    )
    assert result["interrupted"] >= 1 or stage in ("ingest", "gate")  # a model batch was caught mid-way


def test_redis_killed_and_restarted_from_its_aof(
    fault_stack, own_redis: OwnRedis, own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    started = time.monotonic()
    ids = submit(fault_stack, meetings(tmp_path, 60))
    wait_for_claim(own_postgres.url, ids, "summarizing")
    own_redis.kill()
    time.sleep(10)
    own_redis.start()
    audit(
        fault_stack,
        own_postgres.url,
        "kill -9 Redis, restart from its AOF after 10 s (60 jobs)",
        ids,
        started,
    )


def test_postgres_stopped_for_30_seconds(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    started = time.monotonic()
    ids = submit(fault_stack, meetings(tmp_path, 60))
    wait_for_claim(own_postgres.url, ids, "summarizing")
    own_postgres.stop_immediately()
    down = fault_stack.recap("submit", *meetings(tmp_path / "while-down", 1), "--json")
    assert down.returncode == 3 and "unavailable" in down.stdout, down.stdout + down.stderr
    time.sleep(30)
    own_postgres.start()
    audit(fault_stack, own_postgres.url, "PostgreSQL stopped -m immediate for 30 s (60 jobs)", ids, started)


def test_a_burst_of_2000_jobs(fault_stack, own_postgres: OwnPostgres, tmp_path: Path) -> None:
    started = time.monotonic()
    ids = submit(fault_stack, meetings(tmp_path, 2000, turns=2))
    assert len(ids) == 2000
    audit(fault_stack, own_postgres.url, "a burst of 2,000 jobs at once", ids, started)
