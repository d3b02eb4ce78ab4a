"""What the fault suite checks after every scenario: every job ended the way the scenario says (done, or degraded
where the budget refused an escalation; failures only where the scenario names them, with their code), within
RECOVERY_LIMIT_S of the fault's end (RECOVERY_S, the target, is reported); no attempt has two ledger rows, no job is billed twice for a stage, the budget's
spend equals what the ledger's large attempts cost, no outbox row is left, and the stack still answers."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import redis
from kombu.exceptions import OperationalError

from shared.celery_app import create_app
from shared.stages import QUEUES
from tests.conftest import note

TERMINAL = ["done", "degraded", "rejected", "failed"]
BUDGET_USD = 0.5  # RECAP_BUDGET_USD in the suite's environment
RECOVERY_S = (
    30.0  # the target: every job ended at most this long after the outage ended (reported in the notes)
)
# What the suite fails on: a stack this slow to recover has hung. Not the target: on CI's two shared cores, beside
# the other half of the suite, a recovery of 46 s was seen where an idle machine takes 5 to 20.
RECOVERY_LIMIT_S = 180.0


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


def now() -> datetime:
    return datetime.now(UTC)


def drain(url: str, ids: list[str], timeout: float = 240) -> None:
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
            return
        time.sleep(0.25)
    stuck = query(url, "SELECT status, count(*) FROM job WHERE id = ANY(%s::uuid[]) GROUP BY status", ids)
    raise AssertionError(f"jobs did not all end within {timeout}s: {stuck}")


def workers_answer(stack, timeout: float = 120) -> None:
    """Every worker answers a ping (restarted ones included), over a fresh connection; a worker whose mailbox
    went deaf is restarted by its own check (shared/mailbox.py) within about a minute."""
    deadline = time.monotonic() + timeout
    answered: set[str] = set()
    while time.monotonic() < deadline:
        app = create_app(stack.settings)
        try:
            replies = app.control.ping(timeout=1.0)
        except (redis.ConnectionError, OSError, OperationalError):
            replies = []
        finally:
            app.close()  # its connections, not left open for Redis to count
        answered = {name for reply in replies for name in reply}
        if len(answered) >= len(QUEUES):
            return
        time.sleep(0.5)
    listening = [c for c in _clients(stack) if c.get("psub", "0") != "0" or c.get("sub", "0") != "0"]
    raise AssertionError(
        f"only {sorted(answered)} of the stack's {len(QUEUES)} workers answered a ping; "
        f"Redis clients subscribed: {listening}; the workers' own checks said: {_mailbox_lines(stack)}"
    )


def _mailbox_lines(stack) -> list[str]:
    """The stack log's last lines from the workers' mailbox checks (shared/mailbox.py)."""
    log = Path(stack.env["RECAP_VAR_DIR"]) / "stack.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [line[:300] for line in lines if "mailbox" in line or "own ping" in line][-8:]


def _clients(stack) -> list[dict[str, str]]:
    try:
        with redis.Redis.from_url(stack.settings.redis_url, socket_timeout=5) as client:
            return list(client.client_list())
    except redis.RedisError as error:
        return [{"error": str(error)}]


def _invariants(url: str, ids: list[str]) -> dict[str, object]:
    one = "job_id = ANY(%s::uuid[])"
    return {
        "duplicated ledger rows": query(
            url,
            f"SELECT job_id, stage, attempt FROM stagerun WHERE {one} GROUP BY 1, 2, 3 HAVING count(*) > 1",
            ids,
        ),
        "billed twice": query(
            url,
            f"SELECT job_id, stage FROM stagerun WHERE {one} AND outcome = 'ok' GROUP BY 1, 2 HAVING count(*) > 1",
            ids,
        ),
        # A finished job holds exactly one billed result per stage it went through.
        "unbilled": query(
            url,
            "SELECT j.id FROM job j WHERE j.id = ANY(%s::uuid[]) AND j.status IN ('done', 'degraded') AND "
            "(SELECT count(DISTINCT stage) FROM stagerun r WHERE r.job_id = j.id AND r.outcome = 'ok') "
            "<> CASE WHEN j.tier = 'large' THEN 4 ELSE 3 END",
            ids,
        ),
        "unsent outbox rows": query(url, f"SELECT job_id FROM outbox WHERE {one}", ids),
    }


def audit(
    stack,
    url: str,
    name: str,
    ids: list[str],
    fault_ended: datetime | None,
    failures: dict[str, int] | None = None,
    drain_s: float = 240,
) -> dict[str, int]:
    """Waits (up to `drain_s`) for every job to end, checks the guarantees, records the scenario's line.
    `failures`: the jobs the scenario is meant to end without a summary, by code (none unless it says so)."""
    drain(url, ids, drain_s)
    by_status = dict(
        query(url, "SELECT status, count(*) FROM job WHERE id = ANY(%s::uuid[]) GROUP BY 1", ids)
    )
    codes = dict(
        query(
            url,
            "SELECT coalesce(error_code, '-'), count(*) FROM job WHERE id = ANY(%s::uuid[]) "
            "AND status IN ('failed', 'rejected') GROUP BY 1",
            ids,
        )
    )
    first, last_end = query(
        url, "SELECT min(created_at), max(finished_at) FROM job WHERE id = ANY(%s::uuid[])", ids
    )[0]
    recovery = (last_end - fault_ended).total_seconds() if fault_ended else None
    interrupted = query(
        url, "SELECT count(*) FROM stagerun WHERE job_id = ANY(%s::uuid[]) AND outcome = 'interrupted'", ids
    )[0][0]
    spent = query(url, "SELECT coalesce(sum(spent_usd), 0) FROM budgetspend WHERE scope = 'global'")[0][0]
    large = query(url, "SELECT coalesce(sum(cost_usd), 0) FROM stagerun WHERE stage = 'large'")[0][0]
    broken = {what: rows for what, rows in _invariants(url, ids).items() if rows}
    assert stack.proc.poll() is None, "recap up exited"
    workers_answer(stack)

    note(
        f"{name}: {len(ids)} jobs; "
        + ", ".join(f"{status} {by_status.get(status, 0)}" for status in TERMINAL)
        + f" ({', '.join(f'{c} {n}' for c, n in sorted(codes.items())) or 'no error codes'}); "
        f"interrupted attempts {interrupted}; budget USD {float(spent):.6f} = ledger large {float(large):.6f}; "
        + f"drained {(last_end - first).total_seconds():.1f} s after the first submission"
        + (
            f", recovered {recovery:.1f} s after the fault ended (target {RECOVERY_S:g} s: "
            f"{'met' if recovery <= RECOVERY_S else 'missed'})"
            if recovery is not None
            else ""
        )
    )
    ended_well = by_status.get("done", 0) + by_status.get("degraded", 0)
    assert codes == (failures or {}), f"jobs ended without a summary: {codes}"
    assert ended_well == len(ids) - sum((failures or {}).values()), by_status
    assert not broken, broken
    assert Decimal(spent) == Decimal(large), "the budget's spend is not what the large attempts cost"
    assert float(spent) <= BUDGET_USD + 1e-9
    if recovery is not None:
        assert recovery <= RECOVERY_LIMIT_S, (
            f"the last job ended {recovery:.1f} s after the fault ended: hung"
        )
    return {"interrupted": interrupted, **by_status}
