"""The command line of each process the local stack starts (`recap up`; `recap worker` and `recap flower` run the
same ones in a deployment)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from shared.config import Settings
from shared.files import write_private
from shared.stages import NOTIFY, SWEEPER, StageSpec


def worker_command(spec: StageSpec, settings: Settings) -> list[str]:
    # A model worker runs solo: one process holds the model (and on GPU its CUDA context), nothing is forked after
    # torch has started its thread pool, and the worker reads no new message while a batch runs, so backlog
    # gathers into full batches instead of queueing small ones behind a busy child. celery-batches can only
    # gather what the worker has prefetched: a model worker prefetches one batch.
    pool = ["--pool", "solo"] if spec.batched else ["-c", str(spec.concurrency(settings))]
    return _celery_worker(str(spec.stage), spec.worker_module, pool, spec.batch_size(settings), settings)


def notify_command(settings: Settings) -> list[str]:
    """The webhook sender: prefork, one POST per process at a time (a slow receiver holds one process)."""
    pool = ["-c", str(settings.notify_concurrency)]
    return _celery_worker(NOTIFY, f"services.{NOTIFY}.tasks", pool, 1, settings)


def _celery_worker(queue: str, module: str, pool: list[str], prefetch: int, settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", module, "worker",
        "-Q", queue, "-n", f"{queue}@%h", "-E", f"--prefetch-multiplier={prefetch}",
        *pool, "--loglevel", settings.log_level, "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def api_command() -> list[str]:
    return [sys.executable, "-m", "recap.cli", "api"]


def flower_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "recap.flower",
        f"--port={settings.flower_port}", f"--address={settings.flower_address}",
        f"--db={(settings.var_dir / 'flower.db').resolve()}", "--persistent=True",
    ]  # fmt: skip


def flower_env(settings: Settings) -> dict[str, str]:
    """Flower's credentials, for its environment: never on its command line, which `ps` shows every user."""
    return {"FLOWER_BASIC_AUTH": settings.flower_basic_auth} if settings.flower_basic_auth else {}


def flower_credentials(var_dir: Path) -> str:
    """New `recap:<random>` credentials for this run's Flower, also written to <var_dir>/flower.auth (owner only)
    for scripts beside it."""
    auth = f"recap:{secrets.token_urlsafe(18)}"
    path = var_dir / "flower.auth"
    path.unlink(missing_ok=True)
    write_private(path, auth + "\n")
    return auth


def sweeper_command() -> list[str]:
    return [sys.executable, "-m", "recap.cli", SWEEPER]
