"""Flower as `recap up` and `recap flower` run it (`python -m recap.flower --port=...`): its credentials come from
the environment (FLOWER_BASIC_AUTH, which only the process's owner can read; a command line is visible to every
user through `ps`), and its Prometheus `/metrics`, which Flower serves without asking, is behind them too."""

from __future__ import annotations

import sys


def guard_metrics() -> None:
    from flower.views import monitor  # type: ignore[import-untyped]
    from tornado import web

    # Flower's handlers ask for the login with tornado's decorator; its metrics handler does not.
    monitor.Metrics.get = web.authenticated(monitor.Metrics.get)


def main() -> None:
    from celery.bin.celery import main as celery

    guard_metrics()
    sys.argv = ["celery", "-A", "shared.celery_app", "flower", *sys.argv[1:]]
    celery()


if __name__ == "__main__":
    main()
