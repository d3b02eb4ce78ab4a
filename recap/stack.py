"""The local stack: embedded Redis (unless REDIS_URL), migrated database, the four stage workers and the notify
worker, the sweeper, the HTTP API, Flower (behind generated credentials unless given), metrics; a child that dies is
restarted with backoff, and only Ctrl-C or SIGTERM stops the stack."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from recap import orphans
from recap.commands import (
    api_command,
    flower_command,
    flower_credentials,
    flower_env,
    notify_command,
    sweeper_command,
    worker_command,
)
from recap.embedded_redis import EmbeddedRedis
from services.exporter.metrics import serve as serve_metrics
from services.gate.policies import check as check_gate
from services.ingest.parse import check as check_ingest
from shared.backoff import doubling
from shared.celery_app import create_app
from shared.config import Settings
from shared.db.migrate import upgrade
from shared.deathsig import die_with_parent
from shared.stages import NOTIFY, QUEUES, STAGES, SWEEPER

log = logging.getLogger(__name__)


@dataclass
class Child:
    """A supervised process: its command, and how often (and how quickly) it has died."""

    name: str
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    quick_deaths: int = 0  # deaths in a row soon after a start: the backoff's exponent
    restart_at: float | None = None


class RestartCollector(Collector):
    """`recap_process_restarts_total`: the local stack's own supervisor count (Kubernetes counts its pods')."""

    def __init__(self, children: dict[str, Child]) -> None:
        self.children = children

    def collect(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "recap_process_restarts", "Times `recap up` restarted a process that died", labels=["process"]
        )
        for name, child in sorted(self.children.items()):
            restarts.add_metric([name], child.restarts)
        yield restarts


class Stack:
    """Starts and stops the whole local stack; children get their own session so Ctrl-C reaches only us."""

    def __init__(
        self,
        settings: Settings,
        shutdown_grace_s: float = 30.0,
        quiet: bool = False,
        log_file: TextIO | None = None,
        api: bool = True,
    ) -> None:
        self.settings = settings
        self.api = api  # the demo and the benchmarks submit directly and need no HTTP API
        self.quiet = quiet  # children's stdout to our stderr, so ours stays machine-readable
        self.log_file = log_file  # children's output there instead (the demo keeps the terminal for people)
        self.grace = shutdown_grace_s
        self.redis = None if settings.redis_url else EmbeddedRedis(settings.redis_socket)
        self.children: dict[str, Child] = {}
        self.env: dict[str, str] = {}
        self.exporter: WSGIServer | None = None

    def child_env(self) -> dict[str, str]:
        return (
            os.environ
            | {"REDIS_URL": self.settings.broker_url, "DATABASE_URL": self.settings.database_url}
            | flower_env(self.settings)
        )

    def start(self) -> None:
        try:  # settings that would fail every job: refuse to start instead
            check_ingest(self.settings)
            check_gate(self.settings)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        orphans.reap(self.pids)
        if self.redis:
            self.redis.start()
            log.info("embedded Redis on %s", self.settings.broker_url)
        upgrade(self.settings.database_url)
        commands = {str(stage): worker_command(spec, self.settings) for stage, spec in STAGES.items()}
        commands[NOTIFY] = notify_command(self.settings)
        commands[SWEEPER] = sweeper_command()
        if self.api:
            _check_free(self.settings.api_address, self.settings.api_port, "RECAP_API_PORT")
            commands["api"] = api_command()
        if not self.settings.flower_basic_auth:  # never open, not even on loopback: generated, printed once
            self.settings.flower_basic_auth = flower_credentials(self.settings.var_dir)
        commands["flower"] = flower_command(self.settings)
        self.children = {name: Child(name, command) for name, command in commands.items()}
        try:
            self.exporter = serve_metrics(self.settings, RestartCollector(self.children))
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve metrics on {self.settings.metrics_address}:{self.settings.metrics_port} ({exc}); "
                "set RECAP_METRICS_PORT"
            ) from exc
        log.info("metrics on http://%s:%d/metrics", self.settings.metrics_address, self.settings.metrics_port)
        self.env = self.child_env()
        for child in self.children.values():
            self._spawn(child)

    @property
    def pids(self) -> Path:
        return self.settings.var_dir / "stack.pids"

    def _spawn(self, child: Child) -> None:
        out: TextIO | None = self.log_file or (sys.stderr if self.quiet else None)
        child.proc = subprocess.Popen(
            child.command,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (nothing but one prctl call runs there)
            stdout=out,
            stderr=subprocess.STDOUT if self.log_file else None,
        )
        child.started = time.monotonic()
        groups = [c.proc.pid for c in self.children.values() if c.proc is not None]
        orphans.record(self.pids, groups + ([self.redis.proc.pid] if self.redis and self.redis.proc else []))

    def supervise(self) -> None:
        """Restarts children that died: after `restart_backoff_s`, doubled for each death soon after a start
        (up to `restart_backoff_max_s`), so a crash loop neither spins nor gives up."""
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.restart_at is None:
                _kill_group(child.proc)  # a dead Celery main's pool children must not outlive it
                if now - child.started > self.settings.restart_backoff_max_s:
                    child.quick_deaths = 0
                delay = doubling(
                    self.settings.restart_backoff_s, child.quick_deaths, self.settings.restart_backoff_max_s
                )
                child.quick_deaths += 1
                child.restart_at = now + delay
                log.warning(
                    "%s exited with status %s; restart %d in %.1fs",
                    child.name,
                    child.proc.returncode,
                    child.restarts + 1,
                    delay,
                    extra={"child": child.name, "restarts": child.restarts + 1},
                )
            elif now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                self._spawn(child)

    def wait_ready(self, timeout: float = 120.0) -> list[str]:
        """Blocks until every worker answers a ping (restarting any that die meanwhile); their node names."""
        app = create_app(self.settings)
        expected = {f"{queue}@" for queue in QUEUES}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            nodes = [name for reply in app.control.ping(timeout=1.0) for name in reply]
            if {n.split("@")[0] + "@" for n in nodes} >= expected:
                return sorted(nodes)
        dead = ", ".join(f"{c.name} ({c.restarts} restarts)" for c in self.children.values() if c.restarts)
        raise TimeoutError(
            f"workers did not all answer within {timeout:.0f}s" + (f"; {dead}" if dead else "")
        )

    def stop(self) -> None:
        """Warm shutdown: workers finish (or, past the grace period, give back) their current task."""
        procs = {name: c.proc for name, c in self.children.items() if c.proc is not None}
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for name, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", name, self.grace)
                proc.kill()
                proc.wait()
            _kill_group(proc)
        if self.exporter:
            self.exporter.shutdown()
        if self.redis:
            self.redis.stop()
        orphans.clear(self.pids)


def _check_free(address: str, port: int, setting: str) -> None:
    """Refuses to start a child whose port is taken (it would only die and be restarted, over and over)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {address}:{port} ({exc.strerror}); set {setting}") from exc


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kills what is left of a child's process group (each child leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_forever(stack: Stack) -> int:
    """`recap up`: runs until Ctrl-C or SIGTERM, restarting children that die; always stops everything."""
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start()
        nodes = stack.wait_ready()
        settings = stack.settings
        user, _, password = (settings.flower_basic_auth or "").partition(":")
        log.info(
            "ready: %s; API on http://%s:%d; Flower on http://%s:%d (user %s, password %s)",
            ", ".join(nodes),
            settings.api_address,
            settings.api_port,
            settings.flower_address,
            settings.flower_port,
            user,
            password,
        )
        while not stopping:
            stack.supervise()
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
