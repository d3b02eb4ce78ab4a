"""The mailbox check (shared/mailbox.py) through a real Redis and a real Celery worker: a worker that answers is
answered, a node nobody answers for is deaf, and a check made while a task runs or Redis is away counts for
nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from shared import mailbox, progress
from shared.celery_app import create_app
from shared.config import Settings

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    progress.forget_consumer()
    yield
    progress.forget_consumer()


def settings_for(url: str) -> Settings:
    return Settings(redis_url=url, control_timeout_s=2)


@pytest.fixture
def worker(redis_url: str) -> Iterator[str]:
    """A real worker process on its own queue and node name; its node name."""
    node = f"probe-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    env = {**os.environ, "REDIS_URL": redis_url}
    command = [sys.executable, "-m", "celery", "-A", "shared.celery_app", "worker", "--pool", "solo"]
    proc = subprocess.Popen([*command, "-Q", node, "-n", node], env=env, stdout=subprocess.DEVNULL)
    app = create_app(settings_for(redis_url))
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[node], timeout=1.0):
        assert proc.poll() is None and time.monotonic() < deadline, "the worker never answered"
    yield node
    proc.terminate()
    proc.wait(timeout=30)


def test_a_worker_that_answers_is_answered(worker: str, redis_url: str) -> None:
    settings = settings_for(redis_url)
    assert mailbox.answers(create_app(settings), worker, settings) is True


def test_a_node_nobody_answers_for_is_deaf_while_redis_answers(redis_url: str) -> None:
    settings = settings_for(redis_url)
    assert mailbox.answers(create_app(settings), "nobody@nowhere", settings) is False


def test_a_check_while_a_task_runs_or_redis_is_away_proves_nothing(redis_url: str) -> None:
    settings = settings_for(redis_url)
    with progress.working():
        assert mailbox.answers(create_app(settings), "nobody@nowhere", settings) is None
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    away = Settings(redis_url=f"redis://127.0.0.1:{port}/0", control_timeout_s=1, redis_connect_timeout_s=1)
    assert mailbox.answers(create_app(away), "nobody@nowhere", away) is None


def test_a_ping_that_breaks_in_kombu_counts_as_deaf_while_redis_answers(redis_url: str, monkeypatch) -> None:
    """After a reconnection kombu's own state can fail in ways that are neither a connection error nor an answer:
    the check must count that as unanswered (and restart the worker), not die or prove nothing."""
    settings = settings_for(redis_url)
    app = create_app(settings)

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'client'")

    monkeypatch.setattr(app.control, "ping", broken)
    assert mailbox.answers(app, "nobody@nowhere", settings) is False
