"""`recap up` killed with SIGKILL (no handler of its runs): none of its children outlives it (embedded Redis,
workers and their pool children, sweeper, API, Flower), and a second `recap up` on the same var/ starts cleanly
and finishes a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.e2e.conftest import RECAP, RunningStack, stack_env

pytestmark = [pytest.mark.e2e]


def descendants(root: int) -> set[int]:
    """Every live process below `root` (children of children included), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie is dead; only its parent has not read its status yet
            left.add(pid)
    return left


def start(env: dict[str, str], log: Path) -> RunningStack:
    proc = subprocess.Popen([*RECAP, "up"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
    stack = RunningStack(env, proc)
    deadline = time.monotonic() + 120
    while True:  # the embedded Redis's socket may be a dead one's until the new server binds it
        try:
            stack.wait_ready()
            return stack
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "recap up did not get ready"
            time.sleep(0.5)


def test_sigkilled_recap_up_leaves_no_orphan_and_starts_again(tmp_path: Path, test_models) -> None:
    env = stack_env(tmp_path / "var", test_models)  # embedded Redis, SQLite
    assert "REDIS_URL" not in env
    first = start(env, tmp_path / "up.log")
    children = descendants(first.proc.pid)
    commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text() for pid in alive(children))
    assert "redis-server" in commands and "celery" in commands, commands
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()

    deadline = time.monotonic() + 30
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(children), f"orphans of the killed recap up: {sorted(alive(children))}"

    second = start(env, tmp_path / "up.log")
    try:
        meeting = tmp_path / "m.txt"
        meeting.write_text("A: we ship on Friday.\nB: agreed, and we test on Thursday.\n")
        job = second.json_lines("submit", str(meeting), "--json")[0]["job_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = json.loads(second.recap("status", job, "--json").stdout)["status"]
            if status in ("done", "degraded", "failed", "rejected"):
                break
            time.sleep(0.5)
        assert status == "done"
    finally:
        assert second.stop() == 0
    assert not (tmp_path / "var" / "stack.pids").exists()
    assert not alive(descendants(os.getpid()) & {second.proc.pid})
