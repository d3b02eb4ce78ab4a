"""A time limit on the work of one stage run, which the model backends honour between their steps.

Celery's own time limits do not reach a celery-batches task or the solo pool a model worker runs, so a model
batch carries its deadline here: transformers stops generating at it (`max_time`), llama.cpp checks it per token,
an HTTP call's timeout never runs past it. Each then raises `stage_timeout`. A call that never returns to check
(a hang inside native code) is the watchdog's: `shared/batches.py` ends the process `stage_kill_grace_s` later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import stage_timeout

# One model batch at a time per worker process (solo pool), but the HTTP backend's calls run in a thread pool:
# a process-wide deadline reaches them, a context variable would not.
_lock = threading.Lock()
_deadline: float | None = None
_limit: float = 0.0


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    global _deadline, _limit
    with _lock:
        previous = _deadline, _limit
        _deadline, _limit = time.monotonic() + seconds, seconds
    try:
        yield
    finally:
        with _lock:
            _deadline, _limit = previous


def remaining() -> float | None:
    """Seconds left before the deadline (never below a millisecond); None without one."""
    deadline = _deadline
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


def check() -> None:
    """Raises `stage_timeout` once the deadline has passed."""
    deadline = _deadline
    if deadline is not None and time.monotonic() >= deadline:
        raise stage_timeout(_limit)
