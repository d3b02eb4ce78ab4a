"""The local stack, started with the project's own command (`recap up`), on real Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.celery_app import create_app
from shared.config import Settings
from shared.stages import QUEUES
from tests.conftest import NO_SLICES

RECAP = [sys.executable, "-m", "recap.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningStack:
    def __init__(self, env: dict[str, str], proc: subprocess.Popen[bytes]) -> None:
        self.env = env
        self.proc = proc
        self.settings = Settings(
            **{
                "database_url": env["DATABASE_URL"],
                "redis_url": env.get("REDIS_URL"),
                "var_dir": Path(env["RECAP_VAR_DIR"]),
            }
        )
        self.app = create_app(self.settings)

    def recap(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RECAP, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def json_lines(self, *args: str) -> list[dict]:
        done = self.recap(*args)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert lines, (
            f"recap {' '.join(args[:1])} printed no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
        return lines

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "recap up exited during start-up"
            if len(self.app.control.ping(timeout=1.0)) >= len(QUEUES):
                return
            time.sleep(0.5)
        raise TimeoutError(f"the stack's {len(QUEUES)} workers did not answer")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['RECAP_API_PORT']}"

    def flower_auth(self) -> tuple[str, str]:
        """The credentials `recap up` generated for Flower (it prints them, and keeps them in var/)."""
        user, _, password = (
            (Path(self.env["RECAP_VAR_DIR"]) / "flower.auth").read_text().strip().partition(":")
        )
        return user, password

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=90)


def stack_env(var: Path, models: tuple[Path, Path], **env: str) -> dict[str, str]:
    """What `recap up` (and any `recap` command beside it) runs with in these tests."""
    small, large = models
    full = (
        os.environ
        | {
            "RECAP_VAR_DIR": str(var),
            "RECAP_GATE_FILE": "",  # the stack's own: <var>/gate.json
            "RECAP_SMALL_MODEL": str(small),
            "RECAP_LARGE_MODEL": str(large),
            "RECAP_SMALL_MAX_INPUT_TOKENS": "1024",
            "RECAP_LARGE_MAX_INPUT_TOKENS": "1024",
            "RECAP_SUMMARY_TOKENS_MEDIUM": "24",
            "RECAP_SUMMARY_TOKENS_LONG": "32",
            "RECAP_CHUNK_SUMMARY_TOKENS": "24",
            "RECAP_FLOWER_PORT": str(free_port()),
            "RECAP_METRICS_PORT": str(free_port()),
            "RECAP_API_PORT": str(free_port()),
            "RECAP_DEVICE": "cpu",
            "RECAP_TORCH_THREADS": "1",
            "RECAP_LOG_LEVEL": "WARNING",
            "RECAP_SLICE_S": NO_SLICES,  # by the clock: only the tests of slicing slice
        }
        | env
    )
    for key in ("REDIS_URL", "DATABASE_URL"):
        if not env.get(key):
            full.pop(key, None)
    full.setdefault("DATABASE_URL", f"sqlite:///{var / 'recap.db'}")
    return full


@pytest.fixture
def start_stack(tmp_path: Path, test_models) -> Iterator[Callable[..., RunningStack]]:
    started: list[RunningStack] = []

    def start(**env: str) -> RunningStack:
        full = stack_env(tmp_path / "var", test_models, **env)
        proc = subprocess.Popen([*RECAP, "up"], env=full, stdout=subprocess.DEVNULL)
        stack = RunningStack(full, proc)
        started.append(stack)
        stack.wait_ready()
        return stack

    yield start
    for stack in started:
        if stack.proc.poll() is None:
            stack.stop()


class GateWorker:
    """The real gate worker (the stack's own command) on one queue, fed by `decide`."""

    def __init__(self, settings: Settings, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.settings = settings
        self.proc = proc
        self.log = log
        self.app = create_app(settings)

    def decide(self, job_ids: list, timeout: float = 180) -> list[dict]:
        """Sends every job to the gate queue; returns their decisions once all are made."""
        from sqlmodel import select

        from shared.db.models import GateDecision, Job
        from shared.db.session import session_scope
        from shared.stages import STAGES, Stage

        for job_id in job_ids:
            self.app.send_task(STAGES[Stage.GATE].task, kwargs={"job_id": str(job_id)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the gate worker exited"
            with session_scope(self.settings.database_url) as session:
                found = session.exec(
                    select(GateDecision, Job)
                    .join(Job, Job.id == GateDecision.job_id)  # type: ignore[arg-type]
                    .where(GateDecision.job_id.in_(job_ids))  # type: ignore[attr-defined]
                ).all()
                if len(found) == len(job_ids):
                    by_id = {
                        d.job_id: d.model_dump() | {"status": j.status, "error_code": j.error_code}
                        for d, j in found
                    }
                    return [by_id[j] for j in job_ids]
            time.sleep(0.2)
        raise TimeoutError(f"the gate decided {len(found)} of {len(job_ids)} jobs")


@pytest.fixture
def start_gate(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., GateWorker]]:
    import redis as redis_client

    from recap.commands import worker_command
    from shared.stages import STAGES, Stage

    procs: list[subprocess.Popen[bytes]] = []

    def start(database_url: str, concurrency: int = 2, **env: str) -> GateWorker:
        redis_client.Redis.from_url(redis_url).flushdb()  # no message from an earlier test
        full = (
            os.environ
            | {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "RECAP_LOG_LEVEL": "WARNING"}
            | {"RECAP_GATE_CONCURRENCY": str(concurrency)}
            | env
        )
        for key, value in full.items():
            monkeypatch.setenv(key, value)  # what this process reads too (Settings for the test's own app)
        settings = Settings()
        command = worker_command(STAGES[Stage.GATE], settings)
        log = (tmp_path / f"gate-{len(procs)}.log").open(
            "w"
        )  # the worker's log lines, for tests that read them
        proc = subprocess.Popen(command, env=full, stdout=subprocess.DEVNULL, stderr=log)
        procs.append(proc)
        worker = GateWorker(settings, proc, Path(log.name))
        deadline = time.monotonic() + 60
        while not worker.app.control.ping(timeout=0.5):
            assert proc.poll() is None and time.monotonic() < deadline, "the gate worker did not start"
        return worker

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
