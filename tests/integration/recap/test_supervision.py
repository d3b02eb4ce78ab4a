"""`recap up`'s supervisor restarts a dead child with backoff and counts it; the CLI answers `unavailable`."""

from __future__ import annotations

import subprocess
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest

from recap.stack import Child, RestartCollector, Stack
from shared.config import Settings


def test_a_child_that_keeps_dying_is_restarted_with_growing_backoff(tmp_path) -> None:
    settings = Settings(var_dir=tmp_path, restart_backoff_s=0.1, restart_backoff_max_s=0.4)
    stack = Stack(settings)
    stack.children = {"crasher": Child("crasher", [sys.executable, "-c", "raise SystemExit(3)"])}
    stack.env = {}
    stack._spawn(stack.children["crasher"])
    delays = []
    deadline = time.monotonic() + 10
    while stack.children["crasher"].restarts < 4 and time.monotonic() < deadline:
        before = stack.children["crasher"].restart_at
        stack.supervise()
        after = stack.children["crasher"].restart_at
        if before is None and after is not None:
            delays.append(round(after - time.monotonic(), 1))
        time.sleep(0.02)
    stack.stop()

    crasher = stack.children["crasher"]
    assert crasher.restarts == 4
    assert delays[:4] == [0.1, 0.2, 0.4, 0.4]  # doubled per quick death, capped
    registry = CollectorRegistry()
    registry.register(RestartCollector(stack.children))
    assert 'recap_process_restarts_total{process="crasher"} 4.0' in generate_latest(registry).decode()


def test_a_live_child_is_left_alone_and_stopped_cleanly(tmp_path) -> None:
    stack = Stack(Settings(var_dir=tmp_path), shutdown_grace_s=5)
    stack.children = {"sleeper": Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])}
    stack.env = {}
    stack._spawn(stack.children["sleeper"])
    for _ in range(5):
        stack.supervise()
    assert stack.children["sleeper"].restarts == 0
    stack.stop()
    assert stack.children["sleeper"].proc is not None
    assert stack.children["sleeper"].proc.poll() is not None


def test_submit_answers_unavailable_while_the_database_is_down(tmp_path, redis_url) -> None:
    meeting = tmp_path / "m.txt"
    meeting.write_text("A: hello\nB: hi\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres",
        "REDIS_URL": redis_url,
        "RECAP_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "recap.cli", "submit", str(meeting)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 3
    assert "unavailable" in done.stdout and "cannot reach the database" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_jobs_list_filters_by_status_and_code(tmp_path, redis_url, sqlite_url) -> None:
    from recap.cli.jobs import parse_since
    from shared.db import repository as repo
    from shared.db.session import session_scope
    from shared.errors import JobError

    with session_scope(sqlite_url) as session:
        failed = repo.create_job(session, raw=b"x", tenant="t", source_name="a.txt")
        queued = repo.create_job(session, raw=b"x", tenant="t", source_name="b.txt")
        repo.end_with_error(session, job_id=failed.id, error=JobError("stalled", "no progress"))
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
        "RECAP_VAR_DIR": str(tmp_path),
    }

    def jobs(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "recap.cli", "jobs", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return [line for line in done.stdout.splitlines() if line.startswith("{")]

    assert len(jobs()) == 2
    [line] = jobs("--status", "failed", "--code", "stalled", "--since", "1h")
    assert str(failed.id) in line and '"code":"stalled"' in line.replace(" ", "")
    assert jobs("--status", "failed", "--code", "stage_timeout") == []
    assert str(queued.id) in jobs("--status", "queued")[0]
    assert parse_since("2h") < parse_since("30m")
