"""Jobs as users see them: a page of jobs costs the same few queries whatever its size (no query per job)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from shared.db import ledger, views
from shared.db.session import get_engine, session_scope
from shared.stages import Stage
from tests.factories import create_job


def _jobs(url: str, count: int) -> list[uuid.UUID]:
    """Jobs with a webhook and an opened ingest attempt: every table a view reads has rows."""
    ids = [create_job(url, webhook_url="https://example.com/hook") for _ in range(count)]
    with session_scope(url) as session:
        for job_id in ids:
            ledger.open_attempt(session, job_id=job_id, stage=Stage.INGEST, since=None)
    return ids


@contextmanager
def counted(url: str) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = get_engine(url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _page(url: str, ids: list[uuid.UUID]) -> tuple[list, int]:
    with session_scope(url) as session, counted(url) as statements:
        page = views.job_views(session, job_ids=ids)
        return page, len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


def test_a_page_of_jobs_costs_the_same_queries_for_3_jobs_as_for_30(pg_url) -> None:
    ids = _jobs(pg_url, 30)
    small, small_queries = _page(pg_url, ids[:3])
    large, large_queries = _page(pg_url, ids)
    assert small_queries == large_queries <= 5
    assert [v.job_id for v in large] == [str(i) for i in ids]  # in the order asked for
    assert all(v.webhook is not None and [s.stage for s in v.stages] == ["ingest"] for v in large)


def test_the_page_holds_what_each_job_alone_shows(pg_url) -> None:
    ids = _jobs(pg_url, 4)
    with session_scope(pg_url) as session:
        page = views.job_views(session, job_ids=[*ids, uuid.uuid4()])  # an unknown id is left out
        alone = [views.job_view(session, job_id=i) for i in ids]
    assert page == alone
