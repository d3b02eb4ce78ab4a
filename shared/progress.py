"""Whether this worker process is making progress: the heartbeat (shared/liveness.py) asks before each beat.

A process is stuck when
- a task it runs has been running past the stage's time limit plus twice the kill grace (the batch watchdog in
  shared/batches.py has had its chance by then), or
- its consumer took no message for `consumer_stall_s` while its queue held messages and it had room (nothing
  running, nothing prefetched): the broker connection died without an error, the way kombu's Redis transport
  could stop consuming after a connection reset.
A stuck process stops beating and exits; its supervisor (`recap up`, Kubernetes) restarts it, and the sweeper
resends the jobs it had claimed. The sweeper may also tell a process to stop (`recap:stop:<worker id>`), when one
of its claims outlived every limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from shared.config import Settings


@dataclass
class Progress:
    queues: list[str] = field(default_factory=list)  # what this process consumes (its main process only)
    room: Callable[[], bool] = lambda: True  # nothing prefetched and waiting for the pool
    busy_since: float | None = None  # a task is running in this process since then
    last_taken: float = field(default_factory=time.monotonic)  # a message received, or a task finished
    waiting_since: float | None = None  # since when its queue has waited on an idle consumer
    runs: int = 0  # tasks started in this process: tells a check that a task ran while it waited
    deaf: str | None = None  # why its mailbox seems deaf (shared/mailbox.py), or None
    lock: threading.Lock = field(default_factory=threading.Lock)


_progress = Progress()


def consuming(queues: list[str], room: Callable[[], bool]) -> None:
    """Called once the worker consumes: which queues to watch, and how to tell that it has room."""
    _progress.queues, _progress.room = queues, room
    took()


def forget_consumer() -> None:
    """In a forked pool child: the parent consumes, this process only runs tasks."""
    global _progress
    _progress = Progress()


def took() -> None:
    """A message was received (or a task finished): the consumer is moving."""
    _progress.last_taken = time.monotonic()
    _progress.waiting_since = None


@contextmanager
def working() -> Iterator[None]:
    """Marks a task running in this process."""
    with _progress.lock:
        _progress.busy_since = time.monotonic()
        _progress.runs += 1
    try:
        yield
    finally:
        with _progress.lock:
            _progress.busy_since = None
        took()


def stuck(settings: Settings, queued: int) -> str | None:
    """Why this process is stuck, or None; `queued`: messages waiting in its queues now."""
    now = time.monotonic()
    busy_since = _progress.busy_since
    if busy_since is not None:
        limit = settings.stage_time_limit_s + 2 * settings.stage_kill_grace_s
        return (
            f"a task has run {now - busy_since:.0f}s (limit {limit:.0f}s)"
            if now - busy_since > limit
            else None
        )
    if _progress.deaf is not None:
        return _progress.deaf
    if not _progress.queues or queued == 0 or not _progress.room():
        _progress.waiting_since = None
        return None
    since = _progress.waiting_since = _progress.waiting_since or now
    idle = now - max(since, _progress.last_taken)
    if idle > settings.consumer_stall_s:
        return f"took no message for {idle:.0f}s while {queued} waited in {', '.join(_progress.queues)}"
    return None


def quiet() -> int | None:
    """None while a task runs (a solo worker cannot answer then); otherwise a token that changes when one starts."""
    with _progress.lock:
        return None if _progress.busy_since is not None else _progress.runs


def deafened(why: str | None) -> None:
    """Records whether this process's mailbox seems deaf (shared/mailbox.py)."""
    _progress.deaf = why


def watched_queues() -> list[str]:
    return list(_progress.queues)
