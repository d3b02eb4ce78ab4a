"""The API as its own process (`recap api`, uvicorn) on the real PostgreSQL and Redis, and tenants made with the
real `recap tenants create`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import free_port

RECAP = [sys.executable, "-m", "recap.cli"]


@dataclass
class Api:
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    def tenant(self, name: str, *args: str) -> dict[str, str]:
        """`recap tenants create NAME --json`: the tenant's key and webhook secret."""
        done = subprocess.run(
            [*RECAP, "tenants", "create", name, "--json", *args], env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr + done.stdout
        issued: dict[str, str] = json.loads(done.stdout)
        return issued

    def recap(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RECAP, *args], env=self.env, capture_output=True, text=True)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "recap api exited during start-up"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"recap api did not answer on {url}")


@pytest.fixture
def start_api(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Api]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(database_url: str, **env: str) -> Api:
        redis.Redis.from_url(redis_url).flushdb()  # no rate counts or messages from an earlier test
        port = free_port()
        full = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "RECAP_VAR_DIR": str(tmp_path / "var"),
            "RECAP_API_PORT": str(port),
            "RECAP_LOG_LEVEL": "WARNING",
            **env,
        }
        log = (tmp_path / f"api-{port}.log").open("w")
        proc = subprocess.Popen([*RECAP, "api"], env=full, stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        api = Api(f"http://127.0.0.1:{port}", full, proc)
        wait_healthy(api.url, proc)
        return api

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=30)
