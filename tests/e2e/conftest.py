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
            if len(self.app.control.ping(timeout=1.0)) >= 4:
                return
            time.sleep(0.5)
        raise TimeoutError("the stack's four workers did not answer")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=90)


@pytest.fixture
def start_stack(tmp_path: Path, test_models) -> Iterator[Callable[..., RunningStack]]:
    small, large = test_models
    started: list[RunningStack] = []

    def start(**env: str) -> RunningStack:
        full = (
            os.environ
            | {
                "RECAP_VAR_DIR": str(tmp_path / "var"),
                "RECAP_SMALL_MODEL": str(small),
                "RECAP_LARGE_MODEL": str(large),
                "RECAP_SMALL_MAX_INPUT_TOKENS": "1024",
                "RECAP_LARGE_MAX_INPUT_TOKENS": "1024",
                "RECAP_SUMMARY_TOKENS_MEDIUM": "24",
                "RECAP_SUMMARY_TOKENS_LONG": "32",
                "RECAP_CHUNK_SUMMARY_TOKENS": "24",
                "RECAP_FLOWER_PORT": str(free_port()),
                "RECAP_DEVICE": "cpu",
                "RECAP_TORCH_THREADS": "1",
                "RECAP_LOG_LEVEL": "WARNING",
            }
            | env
        )
        for key in ("REDIS_URL", "DATABASE_URL"):
            if not env.get(key):
                full.pop(key, None)
        full.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'recap.db'}")
        proc = subprocess.Popen([*RECAP, "up"], env=full, stdout=subprocess.DEVNULL)
        stack = RunningStack(full, proc)
        started.append(stack)
        stack.wait_ready()
        return stack

    yield start
    for stack in started:
        if stack.proc.poll() is None:
            stack.stop()
