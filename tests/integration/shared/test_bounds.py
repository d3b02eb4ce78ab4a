"""Every wait on a datastore ends: on a path that stops forwarding without closing (tests/blackhole.py), a
PostgreSQL statement fails after its statement timeout plus the answer grace, a connection attempt after its
connect timeout, and a Redis call after its socket timeout; the broken connection is discarded, and once the path
forwards again the next call works on a fresh one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared import liveness
from shared.config import get_settings
from shared.db.session import libpq_options, session_scope
from tests.blackhole import Blackhole


@pytest.fixture
def pg_path(pg_url: str) -> Iterator[tuple[str, Blackhole]]:
    parts = urlsplit(pg_url)
    hole = Blackhole((parts.hostname or "127.0.0.1", parts.port or 5432))
    user = parts.netloc.rsplit("@", 1)[0]
    yield parts._replace(netloc=f"{user}@127.0.0.1:{hole.port}").geturl(), hole
    hole.close()


@pytest.fixture
def redis_path(redis_url: str) -> Iterator[tuple[str, Blackhole]]:
    parts = urlsplit(redis_url)
    hole = Blackhole((parts.hostname or "127.0.0.1", parts.port or 6379))
    yield f"redis://127.0.0.1:{hole.port}{parts.path}", hole
    hole.close()


def ask(url: str) -> int:
    with session_scope(url) as session:
        return int(session.connection().execute(text("SELECT 1")).scalar_one())


def test_libpq_gets_every_bound_from_the_settings(configure) -> None:
    configure(
        RECAP_DB_STATEMENT_TIMEOUT_S="2.5", RECAP_DB_LOCK_TIMEOUT_S="1", RECAP_DB_TCP_USER_TIMEOUT_S="7"
    )
    options = libpq_options(get_settings())
    assert options["keepalives"] == 1 and options["tcp_user_timeout"] == 7000
    assert options["connect_timeout"] == 5 and options["keepalives_idle"] == 10
    assert options["options"] == "-c statement_timeout=2500 -c lock_timeout=1000"


@pytest.mark.postgres
def test_a_statement_on_a_stalled_path_fails_in_bounded_time_and_the_next_one_works(
    pg_path, configure
) -> None:
    url, hole = pg_path
    configure(RECAP_DB_STATEMENT_TIMEOUT_S="1", RECAP_DB_ANSWER_GRACE_S="1", RECAP_DB_CONNECT_TIMEOUT_S="2")
    assert ask(url) == 1  # a pooled connection, now idle
    with hole.holding():
        started = time.monotonic()
        with pytest.raises(OperationalError):
            ask(url)  # the pooled connection: its statement is never answered
        assert time.monotonic() - started < 1 + 1 + 1.5  # the deadline plus the guard's tick and slack
        started = time.monotonic()
        with pytest.raises(OperationalError):
            ask(url)  # a new connection cannot even start: the connect timeout ends it
        assert time.monotonic() - started < 2 + 1.5
    assert ask(url) == 1  # the path forwards again: a fresh connection answers


@pytest.mark.postgres
def test_the_server_cancels_a_statement_past_its_timeout(pg_url, configure) -> None:
    configure(RECAP_DB_STATEMENT_TIMEOUT_S="0.5")
    with pytest.raises(OperationalError, match="statement timeout"), session_scope(pg_url) as session:
        session.connection().execute(text("SELECT pg_sleep(3)"))
    assert ask(pg_url) == 1  # the connection survived its cancelled statement


@pytest.mark.redis
def test_our_redis_client_gives_up_on_a_stalled_path(redis_path, configure) -> None:
    url, hole = redis_path
    configure(REDIS_URL=url, RECAP_REDIS_CLIENT_TIMEOUT_S="1.5", RECAP_REDIS_CONNECT_TIMEOUT_S="1")
    client = liveness.client(get_settings())
    client.ping()
    with hole.holding():
        started = time.monotonic()
        with pytest.raises(redis.RedisError):
            client.get("recap:any")
        assert time.monotonic() - started < 1.5 * 2 + 2  # retried once on timeout, then given up
    assert client.ping()
