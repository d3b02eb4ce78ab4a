"""Which worker processes live: each process that claims a job names itself in the claim and keeps a key with
a short TTL in Redis fresh; a claim whose owner's key expired belongs to a dead (or frozen) process.

This is what lets a killed solo worker's jobs be retried within seconds instead of after Redis's visibility
timeout (hours), without shortening that timeout for long batches.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable

import redis

from shared.config import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "recap:alive:"
_started: dict[int, threading.Thread] = {}  # per pid: a forked child starts its own


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def client(settings: Settings) -> redis.Redis:
    """A plain Redis client on the broker (the embedded server's socket too), for our own keys and list lengths.
    Short timeouts: a heartbeat, a sweep or a scrape must not hang on a Redis that went away."""
    return redis.Redis.from_url(
        settings.broker_url.replace("redis+socket://", "unix://"), socket_timeout=2, socket_connect_timeout=2
    )


def _beat(me: str) -> None:
    clients: dict[str, redis.Redis] = {}
    while True:
        settings = get_settings()  # read each time: a test (or a reload) may point us at another Redis
        if settings.broker_url not in clients:
            clients[settings.broker_url] = client(settings)
        try:
            clients[settings.broker_url].set(PREFIX + me, "1", px=int(settings.heartbeat_ttl_s * 1000))
        except redis.RedisError as exc:  # the broker is down: its claims can wait, and so can we
            log.debug("heartbeat failed: %s", exc)
        time.sleep(settings.heartbeat_s)


def ensure_beating() -> str:
    """Starts this process's heartbeat (once per process) and returns the name its claims carry."""
    pid = os.getpid()
    me = worker_id()
    if pid not in _started:
        thread = threading.Thread(target=_beat, args=(me,), name="recap-heartbeat", daemon=True)
        thread.start()
        _started[pid] = thread
    return me


def alive(broker: redis.Redis, workers: Iterable[str]) -> set[str]:
    """Those of `workers` whose heartbeat has not expired."""
    names = sorted(set(workers))
    if not names:
        return set()
    with broker.pipeline() as pipe:
        for name in names:
            pipe.exists(PREFIX + name)
        return {name for name, hit in zip(names, pipe.execute(), strict=True) if hit}
