"""`recap bench-burst`: N jobs submitted at once to `recap up` on this machine's PostgreSQL and Redis with tiny
random-weight models; how long the stack takes to drain them, jobs/s, jobs lost (submitted but not ended with a
summary), and the peak memory of every process of the stack and of Redis while it works."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlmodel import col, func, select

from shared.config import Settings
from shared.db.models import TERMINAL, Job
from shared.db.session import session_scope
from shared.stages import QUEUES

RECAP = [sys.executable, "-m", "recap.cli"]
SUBMIT_CHUNK = 500  # files per `recap submit`


@dataclass(frozen=True)
class BurstConfig:
    jobs: int = 10_000
    timeout_s: float = 3600
    out: Path = Path("bench/results")


def run(config: BurstConfig, settings: Settings) -> dict[str, Any]:
    if not settings.redis_url or not settings.database_url.startswith("postgresql"):
        raise RuntimeError("bench-burst measures on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")
    from recap.benchmarks.api_load import tiny_stack_env

    var = (settings.var_dir / "bench-burst").resolve()
    tenant = f"burst-{uuid.uuid4().hex[:8]}"
    # Short summaries: what is measured is the stack's own work per job, not the random model's writing.
    env = tiny_stack_env(var, RECAP_SUMMARY_TOKENS_MEDIUM="24", RECAP_MIN_NEW_TOKENS="24")
    files = _meetings(var / "meetings", config.jobs)
    broker = redis.Redis.from_url(settings.broker_url)
    log = (var / "stack.log").open("w")
    stack = subprocess.Popen([*RECAP, "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    peaks: dict[str, int] = {}
    try:
        wait_ready(stack)
        started = time.monotonic()
        for chunk in _chunks(files, SUBMIT_CHUNK):
            subprocess.run(
                [*RECAP, "submit", "--tenant", tenant, *chunk], env=env, check=True, capture_output=True
            )
            _sample(stack.pid, broker, peaks)
        submitted_s = time.monotonic() - started
        ended = _drain(settings, tenant, config, stack.pid, broker, peaks, started)
        drain_s = time.monotonic() - started
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=120)
    counts = _by_status(settings, tenant)
    well = counts.get("done", 0) + counts.get("degraded", 0)
    result: dict[str, Any] = {
        "benchmark": f"burst_{config.jobs}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "jobs": config.jobs,
        "submitted_in_s": round(submitted_s, 1),
        "drained_in_s": round(drain_s, 1),
        "jobs_per_s": round(config.jobs / drain_s, 2),
        "ended": ended,
        "by_status": counts,
        "lost": config.jobs - well,
        "peak_rss_mb": {
            name: round(rss / 2**20, 1) for name, rss in sorted(peaks.items()) if name != "redis"
        },
        "redis_peak_memory_mb": round(peaks.get("redis", 0) / 2**20, 1),
    }
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / f"burst_{config.jobs}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _meetings(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"m{i:05d}.txt"
        path.write_text(
            f"A: item {i}: we ship the release on day {i % 7}.\nB: agreed, and we test it first.\n"
        )
        files.append(str(path))
    return files


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def wait_ready(stack: subprocess.Popen[bytes], timeout: float = 180) -> None:
    from shared.celery_app import create_app

    app = create_app()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            raise RuntimeError("recap up exited; see its log under var/bench-burst/stack.log")
        if len(app.control.ping(timeout=1.0)) >= len(QUEUES):
            return
    raise TimeoutError("the stack did not get ready")


def _drain(
    settings: Settings,
    tenant: str,
    config: BurstConfig,
    root: int,
    broker: redis.Redis,
    peaks: dict[str, int],
    started: float,
) -> int:
    """Jobs ended when every one has (or the timeout passed), sampling memory each second meanwhile."""
    ended = 0
    while time.monotonic() - started < config.timeout_s:
        _sample(root, broker, peaks)
        with session_scope(settings.database_url) as session:
            ended = session.exec(
                select(func.count()).where(Job.tenant == tenant, col(Job.status).in_(TERMINAL))
            ).one()
        if ended >= config.jobs:
            break
        time.sleep(1)
    return int(ended)


def _by_status(settings: Settings, tenant: str) -> dict[str, int]:
    with session_scope(settings.database_url) as session:
        rows = session.exec(select(Job.status, func.count()).where(Job.tenant == tenant).group_by(Job.status))
        return {str(status): int(n) for status, n in rows.all()}


def _sample(root: int, broker: redis.Redis, peaks: dict[str, int]) -> None:
    """Peak resident memory per process of the stack (a prefork pool's children as one name each) and Redis's
    own peak."""
    for pid, name in _tree(root).items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = next(
            (int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS")), 0
        )
        peaks[name] = max(peaks.get(name, 0), rss)
    info: dict[str, Any] = broker.info("memory")  # type: ignore[assignment]  # the sync client's answer
    peaks["redis"] = max(peaks.get("redis", 0), int(info["used_memory_peak"]))


def _tree(root: int) -> dict[int, str]:
    """Every process below `root`, named by its role (queue, api, sweeper, flower) and pool child number."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    names: dict[int, str] = {root: "recap up"}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = sorted(pid for pid, p in parents.items() if p == parent)
        for i, pid in enumerate(children):
            names[pid] = _role(pid) if parent == root else f"{names[parent]} child {i + 1}"
            frontier.append(pid)
    return names


def _role(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return str(pid)
    if "-Q" in words:
        return f"{words[words.index('-Q') + 1]} worker"
    for role in ("flower", "sweeper", "api"):
        if role in words:
            return role
    return os.path.basename(words[0]) or str(pid)
