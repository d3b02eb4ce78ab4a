"""Engine and sessions. One engine per process, made lazily so that no pool crosses a fork."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlmodel import Session, create_engine

from shared.config import Settings, get_settings
from shared.db import guard

_engines: dict[tuple[str, int], Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Several worker processes write one SQLite file: WAL lets readers run beside the writer.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    settings = get_settings()
    # No pre-ping: it costs a round trip per transaction. A connection that errored is discarded instead
    # (_discard_broken), and every stage retries a lost database.
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_recycle=settings.db_pool_recycle_s,
        connect_args=libpq_options(settings),
    )
    event.listen(engine, "handle_error", _discard_broken)
    if settings.db_statement_timeout_s:
        answer_within = settings.db_statement_timeout_s + settings.db_answer_grace_s
        event.listen(
            engine, "before_cursor_execute", lambda _, cur, *__: guard.arm(cur.connection, answer_within)
        )
        event.listen(engine, "after_cursor_execute", lambda _, cur, *__: guard.disarm(cur.connection))
    return engine


def libpq_options(settings: Settings) -> dict[str, Any]:
    """Every wait on PostgreSQL bounded: connecting, a peer gone silent, unacknowledged writes, and statements
    and lock waits on the server."""
    server = [
        f"-c statement_timeout={int(settings.db_statement_timeout_s * 1000)}",
        f"-c lock_timeout={int(settings.db_lock_timeout_s * 1000)}",
    ]
    return {
        "connect_timeout": settings.db_connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": settings.db_keepalives_idle_s,
        "keepalives_interval": settings.db_keepalives_interval_s,
        "keepalives_count": settings.db_keepalives_count,
        "tcp_user_timeout": int(settings.db_tcp_user_timeout_s * 1000),
        "options": " ".join(server),
    }


def _discard_broken(context: ExceptionContext) -> None:
    """A statement that failed on a broken connection (closed, reset, timed out, cut by the guard) discards it,
    whatever the error's message says: the pool must never hand it out again."""
    cursor = getattr(context, "cursor", None)  # none while connecting
    if cursor is None:
        return
    connection = cursor.connection
    guard.disarm(connection)
    if isinstance(connection, psycopg.Connection) and (connection.broken or connection.closed):
        context.is_disconnect = True


def get_engine(url: str | None = None) -> Engine:
    """This process's engine for `url` (default: the configured DATABASE_URL)."""
    url = url or get_settings().database_url
    key = (url, os.getpid())
    if key not in _engines:
        _engines[key] = make_engine(url)
    return _engines[key]


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
