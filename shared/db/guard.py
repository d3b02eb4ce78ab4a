"""The client side of a statement's time limit. PostgreSQL's statement_timeout needs a server that hears the
statement; on a stalled path (no FIN, no RST, the kernel still ACKing a proxy's buffers) libpq would wait for
its answer forever. One thread per process watches the statements in flight and shuts down the socket of any
that outlived its deadline: the call then fails as a lost connection, which the pool discards and every caller
already retries."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_deadlines: dict[int, float] = {}  # socket fd -> monotonic deadline, per statement in flight
_watcher: threading.Thread | None = None
TICK_S = 0.25


def _fd(dbapi_conn: Any) -> int | None:
    with contextlib.suppress(Exception):
        return int(dbapi_conn.pgconn.socket)
    return None


def arm(dbapi_conn: Any, seconds: float) -> None:
    fd = _fd(dbapi_conn)
    if fd is None:
        return
    _ensure_watcher()
    with _lock:
        _deadlines[fd] = time.monotonic() + seconds


def disarm(dbapi_conn: Any) -> None:
    fd = _fd(dbapi_conn)
    if fd is not None:
        with _lock:
            _deadlines.pop(fd, None)


def _ensure_watcher() -> None:
    global _watcher
    if _watcher is None or not _watcher.is_alive():  # a forked child has no threads: it starts its own
        with _lock:
            _deadlines.clear()
        _watcher = threading.Thread(target=_watch, name="recap-db-guard", daemon=True)
        _watcher.start()


def _watch() -> None:
    while True:
        time.sleep(TICK_S)
        now = time.monotonic()
        with _lock:
            late = [fd for fd, deadline in _deadlines.items() if deadline <= now]
            for fd in late:
                del _deadlines[fd]
        for fd in late:
            log.warning("a database statement got no answer past its deadline; cutting its connection")
            _shutdown(fd)


def _shutdown(fd: int) -> None:
    """Shuts the connection down (not close: libpq still owns the descriptor, and closes it itself)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=socket.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
