"""Sending a stage's messages after the transaction that wrote them into the outbox, then deleting the rows.

A sender that dies between its commit and its send, or finds Redis down, leaves its rows behind: the sweeper's
relay sends them (services/sweeper). A message sent twice is harmless: a stage's claim takes a job once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from shared.db import outbox as outbox_rows
from shared.db.session import session_scope

log = logging.getLogger(__name__)


def send(app: Celery, task: str, job_ids: Sequence[uuid.UUID], database_url: str | None = None) -> bool:
    """Sends `task` for each job, then deletes their outbox rows; False when the relay has to do it."""
    if not job_ids:
        return True
    try:
        for job_id in job_ids:
            app.send_task(task, kwargs={"job_id": str(job_id)})
    except (BrokerError, OSError) as exc:
        log.warning("could not send %d %s message(s) (%s); the outbox relay will", len(job_ids), task, exc)
        return False
    try:
        with session_scope(database_url) as session:
            outbox_rows.dequeue(session, job_ids=job_ids, task=task)
    except OperationalError as exc:  # the relay sends them again later: a duplicate the claim ignores
        log.warning("sent %d %s message(s) but could not clear the outbox: %s", len(job_ids), task, exc)
    return True
