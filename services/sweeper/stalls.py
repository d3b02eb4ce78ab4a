"""Which jobs are stalled, and why. Read by the sweep (to send them again) and by the metrics (to show them).

A job in a stage's status is stalled when
- its claim's process is dead: the claim is older than a heartbeat's TTL and the process's heartbeat expired
  (a killed worker; found within seconds, not after Redis's visibility timeout);
- its claim outlived the stage's time limit and the watchdog's grace (a process frozen past every limit);
- nobody claimed it for the stage's stall time while the stage's queue was empty and no outbox row waits for it:
  its message was lost (Redis lost its last second of writes, a worker died holding prefetched messages).
A job waiting behind a backlog is not stalled: its stage's queue is not empty.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import redis
from sqlalchemy import select
from sqlmodel import Session, col

from shared import liveness
from shared.config import Settings
from shared.db.models import TERMINAL, Job, Outbox, as_utc, table_of, utcnow
from shared.stages import STAGE_OF_STATUS, STAGES, Stage


class Why(StrEnum):
    WORKER_LOST = "worker_lost"
    HUNG = "hung"
    MESSAGE_LOST = "message_lost"


@dataclass(frozen=True)
class Stalled:
    job_id: uuid.UUID
    stage: Stage
    why: Why
    updated_at: datetime  # the row's version: a sweep changes only a job that did not move meanwhile
    sweeps: int


def find(session: Session, settings: Settings, broker: redis.Redis) -> list[Stalled]:
    now = utcnow()
    soonest = min(settings.heartbeat_ttl_s, settings.stall_s, *settings.stall_s_by_stage.values())
    job = table_of(Job).c
    rows = (
        session.connection()
        .execute(
            select(job.id, job.status, job.claimed_by, job.claimed_at, job.updated_at, job.sweeps).where(
                job.status.not_in(TERMINAL), job.updated_at < now - timedelta(seconds=soonest)
            )
        )
        .all()
    )
    if not rows:
        return []
    owners = liveness.alive(broker, {r.claimed_by for r in rows if r.claimed_by})
    waiting = {r.id for r in rows if not r.claimed_by}
    queued = (
        set(
            session.connection()
            .execute(select(table_of(Outbox).c.job_id).where(col(Outbox.job_id).in_(waiting)))
            .scalars()
        )
        if waiting
        else set()
    )
    with broker.pipeline() as pipe:
        for stage in STAGES:
            pipe.llen(str(stage))
        empty = {stage for stage, length in zip(STAGES, pipe.execute(), strict=True) if length == 0}
    hung_after = timedelta(
        seconds=settings.stage_time_limit_s + settings.stage_kill_grace_s + settings.heartbeat_ttl_s
    )
    stalled = []
    for r in rows:
        stage = STAGE_OF_STATUS[r.status]
        why: Why | None = None
        if r.claimed_by and r.claimed_at is not None:
            claimed_for = now - as_utc(r.claimed_at)
            if claimed_for > timedelta(seconds=settings.heartbeat_ttl_s) and r.claimed_by not in owners:
                why = Why.WORKER_LOST
            elif claimed_for > hung_after:
                why = Why.HUNG
        elif (
            stage in empty
            and r.id not in queued
            and now - as_utc(r.updated_at) > timedelta(seconds=settings.stall_after(stage))
        ):
            why = Why.MESSAGE_LOST
        if why is not None:
            stalled.append(Stalled(r.id, stage, why, r.updated_at, r.sweeps))
    return stalled
