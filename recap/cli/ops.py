"""Running the system: the local stack, one stage's worker, Flower, the metrics exporter, migrations."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recap.cli.app import app, console, setup_logging
from shared.celery_app import create_app
from shared.config import get_settings
from shared.stages import EXPORTER, NOTIFY, QUEUES, STAGES, SWEEPER, Stage


@app.command()
def up() -> None:
    """Run the whole local stack in the foreground until Ctrl-C or SIGTERM."""
    from recap.stack import Stack, run_forever

    setup_logging()
    raise typer.Exit(run_forever(Stack(get_settings())))


@app.command()
def migrate(
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Change nothing; wait until the schema is at head (init containers)."),
    ] = False,
) -> None:
    """Migrate the database (DATABASE_URL) to the latest schema."""
    import time

    from shared.db.migrate import upgrade

    if not wait:
        upgrade()
        return
    deadline = time.monotonic() + get_settings().migrate_wait_s
    while not _at_head() and time.monotonic() < deadline:
        time.sleep(2)
    if not _at_head():
        console.print("[red]error:[/] the schema did not reach head within RECAP_MIGRATE_WAIT_S")
        raise typer.Exit(1)


def _at_head() -> bool:
    from sqlalchemy.exc import OperationalError

    from shared.db.migrate import at_head

    try:
        return at_head()
    except OperationalError:
        return False  # the database is not up yet


def _worker_name(name: str) -> str:
    if name not in QUEUES:
        raise typer.BadParameter(f"choose one of {', '.join(QUEUES)}")
    return name


WorkerName = Annotated[
    str, typer.Argument(help=f"The worker's queue: {', '.join(QUEUES)}.", callback=_worker_name)
]


@app.command()
def worker(name: WorkerName) -> None:
    """Run one queue's Celery worker in the foreground, as `recap up` runs it (containers' command)."""
    from recap.commands import notify_command, worker_command

    settings = get_settings()
    command = notify_command(settings) if name == NOTIFY else worker_command(STAGES[Stage(name)], settings)
    os.execvp(command[0], command)


@app.command()
def ping(name: WorkerName, timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 10.0) -> None:
    """Exit 0 when this host's worker NAME answers `celery inspect ping` (liveness and readiness probes)."""
    import socket

    node = f"{name}@{socket.gethostname()}"
    replies = create_app(get_settings()).control.ping(destination=[node], timeout=timeout)
    if not any(node in reply for reply in replies):
        console.print(f"[red]no answer from {node}[/]")
        raise typer.Exit(1)


@app.command()
def api() -> None:
    """Serve the HTTP API on RECAP_API_ADDRESS:RECAP_API_PORT (uvicorn, RECAP_API_WORKERS processes)."""
    from services.api.server import serve

    setup_logging()
    serve(get_settings())


@app.command()
def flower() -> None:
    """Run Flower (basic auth from RECAP_FLOWER_BASIC_AUTH; required unless it listens on loopback only)."""
    from recap.commands import flower_command, flower_env

    settings = get_settings()
    if not settings.flower_basic_auth and settings.flower_address not in ("127.0.0.1", "localhost"):
        console.print(
            f"[red]error:[/] Flower on {settings.flower_address} needs RECAP_FLOWER_BASIC_AUTH=user:password"
        )
        raise typer.Exit(2)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    command = flower_command(settings)
    os.execvpe(command[0], command, os.environ | flower_env(settings))


@app.command(EXPORTER)
def exporter() -> None:
    """Serve the Prometheus metrics on RECAP_METRICS_ADDRESS:RECAP_METRICS_PORT until stopped."""
    import signal

    from services.exporter.metrics import serve

    setup_logging()
    settings = get_settings()
    server = serve(settings)
    console.print(f"metrics on http://{settings.metrics_address}:{settings.metrics_port}/metrics")
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


@app.command(SWEEPER)
def sweeper() -> None:
    """Relay the outbox and send stalled jobs' messages again, every RECAP_SWEEP_INTERVAL_S, until stopped."""
    import signal
    import threading

    from services.sweeper.sweep import run_forever

    setup_logging()
    settings = get_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_forever(create_app(settings), settings, stop)
    except KeyboardInterrupt:
        pass
