"""`recap bench-fairness`: does one tenant's very large job hold the model workers while another tenant waits?

On `recap up` (PostgreSQL, Redis, tiny random-weight models: what is measured is the scheduling, not the writing):
12 short jobs from tenant B alone, then 12 short jobs from B submitted once a ~4.9 MB job from tenant A is in the
small stage. Each run once with slicing (RECAP_SLICE_S, the default) and once without (a slice longer than any
job: the baseline, measured in the same run). The figure is the shorts' time behind the large job over their
time alone (target: at most 2), median of the repeats.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, func, select

from recap.benchmarks.burst import RECAP, wait_ready
from shared.config import Settings
from shared.db.models import TERMINAL, Job
from shared.db.session import session_scope
from shared.states import JobStatus

SHORTS = 12
UNSLICED = "1000000"  # seconds per visit: longer than any job takes, so no job is ever sliced


@dataclass(frozen=True)
class FairnessConfig:
    repeats: int = 3
    large_bytes: int = 4_900_000
    timeout_s: float = 1800
    out: Path = Path("bench/results")


def _files(folder: Path, large_bytes: int) -> tuple[Path, list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    line = "we went through the release plan, the budget for the quarter and who tests the new export flow"
    large, written, i = folder / "large.txt", 0, 0
    with large.open("w") as f:
        while written + 200 < large_bytes:
            text = f"{('Ann', 'Bo', 'Cy')[i % 3]}: item {i}: {line}, then {line}.\n"
            written += f.write(text)
            i += 1
    shorts = []
    for n in range(SHORTS):
        path = folder / f"short{n:02d}.txt"
        path.write_text(f"Dee: item {n}: we ship on day {n % 5}.\nEd: agreed, after the tests pass.\n")
        shorts.append(str(path))
    return large, shorts


def _submit(env: dict[str, str], tenant: str, files: list[str]) -> None:
    subprocess.run([*RECAP, "submit", "--tenant", tenant, *files], env=env, check=True, capture_output=True)


def _count(settings: Settings, tenant: str, status: tuple[JobStatus, ...]) -> int:
    with session_scope(settings.database_url) as session:
        stmt = select(func.count()).where(Job.tenant == tenant, col(Job.status).in_(status))
        return int(session.exec(stmt).one())


def _wait(settings: Settings, tenant: str, n: int, status: tuple[JobStatus, ...], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _count(settings, tenant, status) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tenant}: fewer than {n} jobs reached {status} in {timeout_s} s")
        time.sleep(0.1)


def _shorts_s(settings: Settings, env: dict[str, str], shorts: list[str], timeout_s: float) -> float:
    """Seconds from submitting the 12 short jobs (a new tenant) to the last one ending."""
    tenant = f"b-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    _submit(env, tenant, shorts)
    _wait(settings, tenant, len(shorts), tuple(TERMINAL), timeout_s)
    return time.monotonic() - started


def _round(
    settings: Settings, env: dict[str, str], large: Path, shorts: list[str], timeout_s: float
) -> dict[str, float]:
    alone = _shorts_s(settings, env, shorts, timeout_s)
    tenant = f"a-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    _submit(env, tenant, [str(large)])
    _wait(settings, tenant, 1, (JobStatus.SUMMARIZING,), timeout_s)  # the small worker has it now
    behind = _shorts_s(settings, env, shorts, timeout_s)
    _wait(settings, tenant, 1, tuple(TERMINAL), timeout_s)
    return {"alone_s": alone, "behind_large_s": behind, "large_s": time.monotonic() - started}


def _measure(settings: Settings, config: FairnessConfig, slice_s: str, label: str) -> list[dict[str, float]]:
    from recap.benchmarks.api_load import tiny_stack_env

    var = (settings.var_dir / f"bench-fairness-{label}").resolve()
    env = tiny_stack_env(var, RECAP_SLICE_S=slice_s, RECAP_SUMMARY_TOKENS_MEDIUM="24")
    large, shorts = _files(var / "meetings", config.large_bytes)
    log = (var / "stack.log").open("w")
    stack = subprocess.Popen([*RECAP, "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(stack)
        _shorts_s(settings, env, shorts, config.timeout_s)  # warm-up: the model workers load their models
        return [_round(settings, env, large, shorts, config.timeout_s) for _ in range(config.repeats)]
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=120)


def _summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    ratios = [r["behind_large_s"] / r["alone_s"] for r in rounds]
    return {
        "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
        "median_alone_s": round(statistics.median(r["alone_s"] for r in rounds), 2),
        "median_behind_large_s": round(statistics.median(r["behind_large_s"] for r in rounds), 2),
        "median_large_s": round(statistics.median(r["large_s"] for r in rounds), 2),
        "median_ratio": round(statistics.median(ratios), 2),
    }


def run(config: FairnessConfig, settings: Settings) -> dict[str, Any]:
    if not settings.redis_url or not settings.database_url.startswith("postgresql"):
        raise RuntimeError("bench-fairness measures on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")
    sliced = _summary(_measure(settings, config, str(settings.slice_s), "sliced"))
    unsliced = _summary(_measure(settings, config, UNSLICED, "unsliced"))
    result: dict[str, Any] = {
        "benchmark": "fairness",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "large_bytes": config.large_bytes,
        "short_jobs": SHORTS,
        "repeats": config.repeats,
        "slice_s": settings.slice_s,
        "sliced": sliced,
        "unsliced_baseline": unsliced,
        "target_ratio": 2.0,
        "met": sliced["median_ratio"] <= 2.0,
    }
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "fairness.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
