"""The client side of a statement's time limit. PostgreSQL's statement_timeout needs a server that hears the
statement; on a stalled path (no FIN, no RST, the kernel still ACKing a proxy's buffers) libpq would wait for
its answer forever. One thread per process watches the statements in flight and shuts down the socket of any
that outlived its deadline: the call then fails as a lost connection, which the pool discards and every caller
already retries."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
# Per statement in flight, by its connection's id: (deadline, the connection). A weak reference, so that a
# statement whose end was never reported cannot cut another connection that came to reuse the id or the socket.
_deadlines: dict[int, tuple[float, weakref.ref[Any]]] = {}
_watching_pid: int | None = None  # the process whose watcher runs (a forked child starts its own)
TICK_S = 0.25


def _fd(dbapi_conn: Any) -> int | None:
    with contextlib.suppress(Exception):
        return int(dbapi_conn.pgconn.socket)
    return None


def arm(dbapi_conn: Any, seconds: float) -> None:
    _ensure_watcher()
    with _lock:
        _deadlines[id(dbapi_conn)] = (time.monotonic() + seconds, weakref.ref(dbapi_conn))


def disarm(dbapi_conn: Any) -> None:
    with _lock:
        _deadlines.pop(id(dbapi_conn), None)


def _ensure_watcher() -> None:
    global _watching_pid
    if _watching_pid == os.getpid():
        return
    with _lock:
        if _watching_pid == os.getpid():
            return
        _deadlines.clear()
        threading.Thread(target=_watch, name="recap-db-guard", daemon=True).start()
        _watching_pid = os.getpid()


def _watch() -> None:
    while True:
        time.sleep(TICK_S)
        now = time.monotonic()
        with _lock:
            late = {key: ref for key, (deadline, ref) in _deadlines.items() if deadline <= now}
            for key in late:
                del _deadlines[key]
        for ref in late.values():
            fd = _fd(ref())
            if fd is not None:
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
