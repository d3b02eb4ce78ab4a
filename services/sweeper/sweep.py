"""One sweep: relay the outbox rows their senders left, send stalled jobs' stage messages again (or fail them
`stalled` past RECAP_MAX_DELIVERIES sweeps), send the webhooks that are due, erase text past RECAP_RETENTION_DAYS;
every `sweep_interval_s`. Plain functions; `recap sweeper` loops."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

import redis
from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from shared import liveness, outbox, stalls, tenants
from shared.config import Settings
from shared.db import deliveries, reports, retention
from shared.db import outbox as outbox_rows
from shared.db import repository as repo
from shared.db.models import utcnow
from shared.db.session import session_scope
from shared.errors import JobError
from shared.lifecycle import end_job
from shared.stage_tasks import announce
from shared.stages import NOTIFY, NOTIFY_TASK, STAGES

log = logging.getLogger(__name__)

RELAY_BATCH = 500  # outbox rows per transaction


@dataclass(frozen=True)
class Sweep:
    relayed: int = 0
    resent: int = 0
    failed: int = 0
    notified: int = 0
    erased: int = 0


def notify_due(app: Celery, settings: Settings, broker: redis.Redis) -> int:
    """Sends the notify queue the jobs whose webhook is due (a retry whose backoff passed, a first attempt whose
    message was lost, a delivery whose worker died), while that queue is empty: a backlog is not re-sent."""
    if broker.llen(NOTIFY):
        return 0
    with session_scope(settings.database_url) as session:
        due = deliveries.due(session, limit=RELAY_BATCH)
    for job_id in due:
        app.send_task(NOTIFY_TASK, kwargs={"job_id": str(job_id)})
    return len(due)


def count_in_flight(settings: Settings, broker: redis.Redis) -> None:
    """Writes every tenant's unfinished jobs to Redis for the API's in-flight limit (0 for tenants whose last
    jobs ended); the API adds the jobs it accepts until the next sweep."""
    with session_scope(settings.database_url) as session:
        counts = reports.in_flight_by_tenant(session)
    stale = {
        key.decode().removeprefix(tenants.INFLIGHT_PREFIX)
        for key in broker.scan_iter(f"{tenants.INFLIGHT_PREFIX}*")
    }
    with broker.pipeline() as pipe:
        for tenant in stale | set(counts):
            pipe.set(tenants.inflight_key(tenant), counts.get(tenant, 0), ex=tenants.INFLIGHT_TTL_S)
        pipe.execute()


def erase_expired(settings: Settings) -> int:
    """Erases the text of jobs that ended more than RECAP_RETENTION_DAYS ago (costs stay)."""
    if settings.retention_days is None:
        return 0
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    with session_scope(settings.database_url) as session:
        erased = retention.erase(
            session, job_ids=retention.expired(session, ended_before=cutoff, limit=RELAY_BATCH)
        )
    if erased:
        log.info(
            "erased the text of %d job(s) past RECAP_RETENTION_DAYS (%g)", erased, settings.retention_days
        )
    return erased


def relay(app: Celery, settings: Settings) -> int:
    """Sends the outbox rows older than `outbox_relay_after_s` and deletes them; how many it sent."""
    cutoff = utcnow() - timedelta(seconds=settings.outbox_relay_after_s)
    with session_scope(settings.database_url) as session:
        rows = outbox_rows.unsent(session, older_than=cutoff, limit=RELAY_BATCH)
        for _, job_id, task in rows:
            app.send_task(task, kwargs={"job_id": str(job_id)})
        outbox_rows.drop_outbox(session, ids=[row_id for row_id, _, _ in rows])
    if rows:
        log.warning("outbox relay sent %d message(s) their senders left behind", len(rows))
    return len(rows)


def _give_up(job: stalls.Stalled, settings: Settings) -> bool:
    """Ends a job swept `max_deliveries` times `stalled`; whether its webhook is now due."""
    error = JobError(
        "stalled",
        f"the {job.stage} stage made no progress ({job.why}) after {job.sweeps} resends "
        f"(RECAP_MAX_DELIVERIES {settings.max_deliveries}); `recap jobs retry` runs it again",
    )
    return end_job(job.job_id, error)


def _resend(app: Celery, settings: Settings, broker: redis.Redis, job: stalls.Stalled) -> bool:
    """Sends a stalled job's stage message again, unless it moved meanwhile; a hung claimant is told to stop."""
    task = STAGES[job.stage].task
    with session_scope(settings.database_url) as session:
        if not repo.resend(session, job_id=job.job_id, version=job.updated_at, task=task):
            return False
    context = {"job_id": str(job.job_id), "stage": job.stage, "why": job.why}
    log.warning("stalled job sent to %s again (%s)", job.stage, job.why, extra=context)
    outbox.send(app, task, [job.job_id], settings.database_url)
    liveness.count_resend(broker, job.stage, job.why)
    if job.why is stalls.Why.HUNG and job.claimed_by:
        liveness.tell_stop(broker, job.claimed_by, f"job {job.job_id} claimed past every limit")
    return True


def sweep_once(app: Celery, settings: Settings, broker: redis.Redis) -> Sweep:
    relayed = relay(app, settings)
    with session_scope(settings.database_url) as session:
        found = stalls.find(session, settings, broker)
    given_up = [job for job in found if job.sweeps >= settings.max_deliveries]
    ended = [job.job_id for job in given_up if _give_up(job, settings)]
    resent = sum(_resend(app, settings, broker, job) for job in found if job not in given_up)
    failed = len(given_up)
    announce(app, ended)  # the jobs failed `stalled` just now
    count_in_flight(settings, broker)
    return Sweep(relayed, resent, failed, notify_due(app, settings, broker), erase_expired(settings))


def run_forever(app: Celery, settings: Settings, stop: threading.Event | None = None) -> None:
    """Sweeps until `stop` is set; an unreachable Redis or database only skips a sweep."""
    stop = stop or threading.Event()
    broker = liveness.client(settings)
    log.info("sweeping every %gs", settings.sweep_interval_s)
    while not stop.is_set():
        try:
            sweep = sweep_once(app, settings, broker)
            if sweep.resent or sweep.failed or sweep.erased:
                log.info("sweep: %s", sweep)
        except (OperationalError, BrokerError, OSError, redis.RedisError) as exc:
            log.warning("sweep skipped, a datastore is unreachable: %s", exc)
        stop.wait(settings.sweep_interval_s)
