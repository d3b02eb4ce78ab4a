"""Which worker processes live: each process that claims a job names itself in the claim and keeps a key with
a short TTL in Redis fresh; a claim whose owner's key expired belongs to a dead (or frozen) process.

This is what lets a killed solo worker's jobs be retried within seconds instead of after Redis's visibility
timeout (hours), without shortening that timeout for long batches. A process beats only while it makes
progress (shared/progress.py): a live thread in a stuck process proves nothing.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable

import redis

from shared import progress
from shared.config import Settings

log = logging.getLogger(__name__)

PREFIX = "recap:alive:"
STOP_PREFIX = "recap:stop:"  # the sweeper's word to a process whose claim outlived every limit
RESENDS = "recap:resends"  # stage:why -> stalled jobs the sweeper sent again
STOP_TTL_S = 600
_started: dict[int, threading.Thread] = {}  # per pid: a forked child starts its own


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def client(settings: Settings) -> redis.Redis:
    """A plain Redis client on the broker (the embedded server's socket too), for our own keys and list lengths,
    bounded like the broker's own connections: a heartbeat, a sweep or a scrape must not hang on a Redis that
    went away."""
    url = settings.broker_url.replace("redis+socket://", "unix://")
    tcp = {} if url.startswith("unix://") else {"socket_keepalive": settings.redis_keepalive}
    return redis.Redis.from_url(
        url,
        socket_timeout=settings.redis_client_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        health_check_interval=settings.redis_health_check_interval_s,
        retry_on_timeout=settings.redis_retry_on_timeout,
        **tcp,
    )


def _beat(me: str) -> None:
    clients: dict[str, redis.Redis] = {}
    while True:
        # Read afresh, not from get_settings()'s cache: a test may point the process at another Redis, and a
        # thread that filled the shared cache while the environment changed could leave it stale for everyone.
        settings = Settings()
        if settings.broker_url not in clients:
            clients[settings.broker_url] = client(settings)
        try:
            _beat_once(clients[settings.broker_url], settings, me)
        except redis.RedisError as exc:  # the broker is down: its claims can wait, and so can we
            log.debug("heartbeat failed: %s", exc)
        time.sleep(settings.heartbeat_s)


def _beat_once(broker: redis.Redis, settings: Settings, me: str) -> None:
    """Beats only while this process makes progress; a stuck one (or one the sweeper told to stop) exits."""
    with broker.pipeline(transaction=False) as pipe:
        pipe.get(STOP_PREFIX + me)
        for queue in progress.watched_queues():
            pipe.llen(queue)
        told, *lengths = pipe.execute()
    why = progress.stuck(settings, sum(lengths))
    if told is not None:
        why = f"the sweeper found it hung: {told.decode()}"
    if why is None:
        broker.set(PREFIX + me, "1", px=int(settings.heartbeat_ttl_s * 1000))
        return
    broker.delete(PREFIX + me)
    log.critical(
        "worker process stuck (%s); exiting for its supervisor to restart it; its stacks follow", why
    )
    faulthandler.dump_traceback(all_threads=True)
    os._exit(75)


def ensure_beating() -> str:
    """Starts this process's heartbeat (once per process) and returns the name its claims carry."""
    pid = os.getpid()
    me = worker_id()
    if pid not in _started:
        thread = threading.Thread(target=_beat, args=(me,), name="recap-heartbeat", daemon=True)
        thread.start()
        _started[pid] = thread
    return me


def tell_stop(broker: redis.Redis, worker: str, why: str) -> None:
    """Asks a process to exit (its heartbeat reads this): the sweeper's word to one whose claim outlived every
    limit. Kept a while, for a process that is slow to beat."""
    broker.set(STOP_PREFIX + worker, why, ex=STOP_TTL_S)


def count_resend(broker: redis.Redis, stage: str, why: str) -> None:
    """Counts a stalled job sent again, by stage and why (`recap_stall_resends_total`)."""
    broker.hincrby(RESENDS, f"{stage}:{why}", 1)


def resends(broker: redis.Redis) -> dict[tuple[str, str], int]:
    counts: dict[bytes, bytes] = broker.hgetall(RESENDS)  # type: ignore[assignment]  # the sync client's answer
    found: dict[tuple[str, str], int] = {}
    for key, value in counts.items():
        stage, _, why = key.decode().partition(":")
        found[stage, why] = int(value)
    return found


def alive(broker: redis.Redis, workers: Iterable[str]) -> set[str]:
    """Those of `workers` whose heartbeat has not expired."""
    names = sorted(set(workers))
    if not names:
        return set()
    with broker.pipeline() as pipe:
        for name in names:
            pipe.exists(PREFIX + name)
        return {name for name, hit in zip(names, pipe.execute(), strict=True) if hit}
