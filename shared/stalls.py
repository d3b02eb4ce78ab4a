"""Which jobs are stalled, and why. Read by the sweep (to send them again) and by the metrics (to show them).

A job in a stage's status is stalled when
- its claim's process is dead: the claim is older than a heartbeat's TTL and the process's heartbeat expired
  (a killed worker; found within seconds, not after Redis's visibility timeout);
- its claim outlived the stage's time limit and the watchdog's grace (a process frozen past every limit);
- nobody claimed it for the stage's stall time while the stage's queue was empty and no outbox row waits for it:
  its message was lost (Redis lost its last second of writes, a worker died holding prefetched messages).
A job waiting behind a backlog is not stalled: its stage's queue is not empty. Nor is one whose message a worker
has taken and not claimed yet (kombu's `unacked` hash), while that is a live worker's: taken less than the
stage's stall time ago (a batch gathering), or while a live process works in the stage (a solo worker holds its
next batch while it loads its model or runs a long batch). A dead worker's taken messages are lost.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from sqlalchemy import select
from sqlmodel import Session, col

from shared import liveness
from shared.config import Settings
from shared.db.models import TERMINAL, Job, Outbox, as_utc, table_of, utcnow
from shared.stages import STAGE_OF_STATUS, STAGES, Stage

UNACKED = "unacked"  # kombu's Redis transport: Channel.unacked_key
UNACKED_INDEX = "unacked_index"  # its delivery times: Channel.unacked_index_key


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
    claimed_by: str | None = None


@dataclass(frozen=True)
class _Seen:
    """What one sweep read besides the jobs: live claimants, queued and taken messages, idle and busy stages."""

    now: datetime
    owners: set[str]
    queued: set[uuid.UUID]
    empty: set[Stage]
    busy: set[Stage]
    taken: dict[uuid.UUID, datetime]


def find(session: Session, settings: Settings, broker: redis.Redis) -> list[Stalled]:
    now = utcnow()
    soonest = min(settings.heartbeat_ttl_s, settings.stall_s, *settings.stall_s_by_stage.values())
    job = table_of(Job).c
    stmt = select(job.id, job.status, job.claimed_by, job.claimed_at, job.updated_at, job.sweeps).where(
        job.status.not_in(TERMINAL), job.updated_at < now - timedelta(seconds=soonest)
    )
    rows = session.connection().execute(stmt).all()
    if not rows:
        return []
    owners = liveness.alive(broker, {r.claimed_by for r in rows if r.claimed_by})
    waiting = {r.id for r in rows if not r.claimed_by}
    busy = {STAGE_OF_STATUS[r.status] for r in rows if r.claimed_by in owners}
    taken = unacked_jobs(broker) if waiting else {}
    seen = _Seen(now, owners, _in_outbox(session, waiting), _empty_queues(broker), busy, taken)
    stalled = []
    for r in rows:
        stage = STAGE_OF_STATUS[r.status]
        if (why := _why(r, stage, seen, settings)) is not None:
            stalled.append(Stalled(r.id, stage, why, r.updated_at, r.sweeps, r.claimed_by))
    return stalled


def _in_outbox(session: Session, job_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    if not job_ids:
        return set()
    stmt = select(table_of(Outbox).c.job_id).where(col(Outbox.job_id).in_(job_ids))
    return set(session.connection().execute(stmt).scalars())


def _empty_queues(broker: redis.Redis) -> set[Stage]:
    with broker.pipeline() as pipe:
        for stage in STAGES:
            pipe.llen(str(stage))
        return {stage for stage, length in zip(STAGES, pipe.execute(), strict=True) if length == 0}


def _why(row: Any, stage: Stage, seen: _Seen, settings: Settings) -> Why | None:
    """Why the job is stalled, if it is (the module's docstring gives the rules)."""
    if row.claimed_by and row.claimed_at is not None:
        claimed_for = seen.now - as_utc(row.claimed_at)
        if claimed_for > timedelta(seconds=settings.heartbeat_ttl_s) and row.claimed_by not in seen.owners:
            return Why.WORKER_LOST
        hung_after = settings.stage_time_limit_s + settings.stage_kill_grace_s + settings.heartbeat_ttl_s
        return Why.HUNG if claimed_for > timedelta(seconds=hung_after) else None
    stall_s = settings.stall_after(stage)
    lost = (
        stage in seen.empty
        and row.id not in seen.queued
        and not _held(seen.taken.get(row.id), stage in seen.busy, stall_s, seen.now)
        and seen.now - as_utc(row.updated_at) > timedelta(seconds=stall_s)
    )
    return Why.MESSAGE_LOST if lost else None


def _held(taken_at: datetime | None, busy: bool, stall_s: float, now: datetime) -> bool:
    """Whether a worker that took the job's message may still claim it."""
    return taken_at is not None and (busy or now - taken_at < timedelta(seconds=stall_s))


def unacked_jobs(broker: redis.Redis) -> dict[uuid.UUID, datetime]:
    """The jobs whose stage message a worker has taken from its queue and not acknowledged, with when it took
    it (kombu's Redis transport keeps each such message in the `unacked` hash, and the time in `unacked_index`,
    until its ack)."""
    with broker.pipeline(transaction=False) as pipe:
        pipe.hgetall(UNACKED)
        pipe.zrange(UNACKED_INDEX, 0, -1, withscores=True)
        messages, times = pipe.execute()
    when = dict(times)
    taken = {}
    for tag, raw in messages.items():
        with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
            message = json.loads(raw)[0]
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            _args, kwargs, _embed = json.loads(body)
            taken[uuid.UUID(kwargs["job_id"])] = datetime.fromtimestamp(when.get(tag, 0), UTC)
    return taken
