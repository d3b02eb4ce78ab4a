"""Whether this worker still answers its remote-control mailbox (Celery's pidbox: `ping`, Flower, `recap ping`,
Kubernetes' liveness probe).

Seen once in CI after a Redis restart: a worker went on consuming its queue, yet never answered a ping again, so
every tool that watches workers took it for dead while nothing restarted it. A thread pings this worker's own node
every `control_check_s` while the worker is idle; when `control_failures` checks in a row go unanswered while
Redis itself answers, the heartbeat reports the process stuck (shared/progress.py) and it exits, for its
supervisor (`recap up`, Kubernetes) to restart it. A check made while a task runs, or while Redis is away, proves
nothing either way and is not counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from shared import liveness, progress
from shared.config import Settings

log = logging.getLogger(__name__)

_started: set[int] = set()  # per pid: a forked child does not consume, and checks nothing


def watch(app: Celery, node: str) -> None:
    """Starts this process's mailbox check (once per process); `app`: one for this thread alone."""
    if os.getpid() in _started:
        return
    _started.add(os.getpid())
    threading.Thread(target=_watch, args=(app, node), name="recap-mailbox", daemon=True).start()


def _watch(app: Celery, node: str) -> None:
    unanswered = 0
    while True:
        settings = Settings()  # afresh, like the heartbeat (shared/liveness.py)
        time.sleep(settings.control_check_s)
        try:
            answer = answers(app, node, settings)
        except Exception:  # the check must outlive anything: a dead check would leave a deaf worker alone
            log.exception("worker %s could not check its own mailbox", node)
            continue
        if answer is None:
            continue
        unanswered = 0 if answer else unanswered + 1
        if unanswered:
            log.warning("worker %s left its own ping unanswered (%d in a row)", node, unanswered)
        progress.deafened(
            f"its mailbox left {unanswered} pings in a row unanswered while Redis answered"
            if unanswered >= settings.control_failures
            else None
        )


def answers(app: Celery, node: str, settings: Settings) -> bool | None:
    """Whether `node` answered a ping; None when that proves nothing (a task ran, or Redis did not answer)."""
    before = progress.quiet()
    if before is None:
        return None
    try:
        if app.control.ping(destination=[node], timeout=settings.control_timeout_s):
            return True
    except (OperationalError, redis.RedisError, OSError):
        return None
    except Exception:  # kombu's own state broken after a reconnection: as deaf as no answer, if Redis answers
        log.exception("worker %s could not ping itself", node)
    if progress.quiet() != before:
        return None
    try:
        with liveness.client(settings) as broker:
            broker.ping()
    except redis.RedisError:
        return None
    return False
