"""The outbox relay, the stall finder and the sweep, on each database and the real Redis; the retry of failed
jobs; the time limit on a model batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
import redis
from sqlalchemy import update

from recap import client
from services.ingest.stage import ingest_job
from services.small.stage import summarize_job, summarize_jobs
from services.sweeper.sweep import relay, sweep_once
from shared import liveness, outbox, stalls
from shared.celery_app import create_app
from shared.config import get_settings
from shared.db import outbox as db_outbox
from shared.db import repository as repo
from shared.db.models import Job, utcnow
from shared.db.session import session_scope
from shared.errors import JobError
from shared.lifecycle import claim, end_job
from shared.stage_tasks import send_back
from shared.stages import Stage
from tests.factories import MEETING, rows

pytestmark = pytest.mark.redis


@pytest.fixture
def world(pipeline, redis_url, configure):
    configure(REDIS_URL=redis_url, RECAP_OUTBOX_RELAY_AFTER_S="0", RECAP_STALL_S="5", RECAP_HEARTBEAT_S="0.2")
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    return pipeline, create_app(get_settings()), broker


def submitted_unsent(url: str) -> uuid.UUID:
    """A job committed with its outbox row, by a submitter that died before sending."""
    with session_scope(url) as session:
        job = repo.create_job(session, raw=MEETING, tenant="t1", source_name="meeting.txt")
        db_outbox.enqueue(session, job_id=job.id, task="ingest.run")
    return job.id


def age(url: str, job_id: uuid.UUID, seconds: float, **fields) -> None:
    with session_scope(url) as session:
        at = utcnow() - timedelta(seconds=seconds)
        session.connection().execute(update(Job).where(Job.id == job_id).values(updated_at=at, **fields))


def outbox_rows(url: str) -> int:
    with session_scope(url) as session:
        return len(db_outbox.unsent(session, older_than=utcnow() + timedelta(seconds=1), limit=100))


def test_a_message_its_sender_never_sent_is_relayed_once(world) -> None:
    url, app, broker = world
    job_id = submitted_unsent(url)
    assert outbox_rows(url) == 1 and broker.llen("ingest") == 0

    assert relay(app, get_settings()) == 1
    assert broker.llen("ingest") == 1 and outbox_rows(url) == 0
    assert relay(app, get_settings()) == 0  # sent once
    assert (
        ingest_job(job_id).forward == [job_id] and outbox_rows(url) == 1
    )  # the stage's own move writes the next one


def test_a_send_that_finds_redis_down_leaves_the_row_for_the_relay(world) -> None:
    url, app, broker = world
    job_id = submitted_unsent(url)
    down = create_app(get_settings().model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    down.conf.broker_transport_options = {"max_retries": 0}
    down.conf.task_publish_retry = False

    assert outbox.send(down, "ingest.run", [job_id], url) is False
    assert outbox_rows(url) == 1
    assert outbox.send(app, "ingest.run", [job_id], url) is True
    assert outbox_rows(url) == 0 and broker.llen("ingest") == 1


def test_stalled_jobs_are_found_by_why(world) -> None:
    url, app, broker = world
    settings = get_settings()
    dead, live, lost, waiting = (submitted_unsent(url) for _ in range(4))
    with session_scope(url) as session:
        for job_id in (dead, live, lost, waiting):
            db_outbox.dequeue(session, job_ids=[job_id], task="ingest.run")
    assert claim(dead, Stage.INGEST, lambda s, j: j) is not None
    assert claim(live, Stage.INGEST, lambda s, j: j) is not None  # this process: its heartbeat runs
    deadline = time.monotonic() + 5
    while not liveness.alive(broker, [liveness.worker_id()]):
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.05)
    age(url, dead, 10, claimed_by="gone-host:1", claimed_at=utcnow() - timedelta(seconds=10))
    age(url, live, 10, claimed_at=utcnow() - timedelta(seconds=10))
    age(url, lost, 10)
    age(url, waiting, 1)  # queued a moment ago: not stalled yet

    with session_scope(url) as session:
        found = {job.job_id: job.why for job in stalls.find(session, settings, broker)}
    assert found == {dead: stalls.Why.WORKER_LOST, lost: stalls.Why.MESSAGE_LOST}

    broker.rpush("ingest", b"a message ahead of them")  # a backlog: waiting is not lost
    with session_scope(url) as session:
        found = {job.job_id: job.why for job in stalls.find(session, settings, broker)}
    assert found == {dead: stalls.Why.WORKER_LOST}


def test_the_sweep_resends_a_stalled_job_then_fails_it_past_the_limit(world, configure) -> None:
    url, app, broker = world
    configure(RECAP_MAX_DELIVERIES="1")
    job_id = submitted_unsent(url)
    with session_scope(url) as session:
        db_outbox.dequeue(session, job_ids=[job_id], task="ingest.run")  # its message was lost
    age(url, job_id, 10)

    assert sweep_once(app, get_settings(), broker).resent == 1
    assert broker.llen("ingest") == 1 and outbox_rows(url) == 0
    broker.delete("ingest")  # lost again
    age(url, job_id, 10)
    assert sweep_once(app, get_settings(), broker).failed == 1

    job = client.view(get_settings(), job_id)
    assert job is not None and job.status == "failed" and job.error is not None
    assert job.error.code == "stalled" and "recap jobs retry" in job.error.message


def test_a_failed_job_is_retried_from_its_stage_as_a_new_run(world) -> None:
    url, app, broker = world
    job_id = submitted_unsent(url)
    assert ingest_job(job_id).forward == [job_id]
    assert claim(job_id, Stage.SMALL, lambda s, j: j) is not None
    end_job(job_id, JobError("internal_error", "a bug"))  # the small stage failed it

    assert client.retry(app, get_settings(), code="internal_error") == [(job_id, Stage.SMALL)]
    assert broker.llen("small") == 1
    assert client.retry(app, get_settings(), job_ids=[job_id]) == []  # no longer failed: left alone
    assert summarize_job(job_id).forward == [job_id]

    runs = [
        (stage, attempt, deliveries, outcome)
        for stage, attempt, deliveries, *_, outcome in rows(url, job_id)["runs"]
    ]
    # The failed attempt keeps its row; the retry's delivery count starts again.
    assert runs == [("ingest", 1, 1, "ok"), ("small", 1, 1, "failed"), ("small", 2, 1, "ok")]


def test_a_model_batch_past_its_time_limit_ends_its_jobs_and_the_next_batch_runs(world, configure) -> None:
    url, app, broker = world
    jobs = [submitted_unsent(url) for _ in range(2)]
    assert all(ingest_job(j).forward for j in jobs)
    configure(RECAP_STAGE_TIME_LIMIT_S="0.001")  # real generation cannot finish in a millisecond

    assert summarize_jobs(jobs).forward == []
    for job_id in jobs:
        job = client.view(get_settings(), job_id)
        assert job is not None and job.status == "failed" and job.error is not None
        assert job.error.code == "stage_timeout"

    configure(RECAP_STAGE_TIME_LIMIT_S="600")
    late = submitted_unsent(url)
    assert ingest_job(late).forward and summarize_jobs([late]).forward == [late]  # the worker goes on


def test_each_sweep_writes_every_tenants_jobs_in_flight_for_the_api(world) -> None:
    url, app, broker = world
    from services.sweeper.sweep import count_in_flight
    from shared.tenants import inflight_key

    queued = [repo_job(url, "t1"), repo_job(url, "t1"), repo_job(url, "t2")]
    broker.set(inflight_key("gone"), 7)  # a tenant whose jobs all ended since the last sweep
    count_in_flight(get_settings(), broker)
    assert [int(broker.get(inflight_key(t)) or -1) for t in ("t1", "t2", "gone")] == [2, 1, 0]
    assert 0 < broker.ttl(inflight_key("t1")) <= 60  # a count nobody refreshes is counted again
    end_job(queued[0], JobError("internal_error", "ended for the test"))
    count_in_flight(get_settings(), broker)
    assert int(broker.get(inflight_key("t1")) or -1) == 1


def repo_job(url: str, tenant: str) -> uuid.UUID:
    with session_scope(url) as session:
        return repo.create_job(session, raw=MEETING, tenant=tenant, source_name="m.txt").id


def test_a_message_a_live_worker_took_and_has_not_claimed_is_not_lost(world) -> None:
    """A worker gathering a batch, or a solo worker busy with a batch (or loading its model), already holds its
    next messages, unacked: those jobs are not `message_lost` while the message was taken less than the stall
    time ago or a live process works in their stage; once neither holds, they are."""
    url, app, broker = world
    settings = get_settings()
    working, held = submitted_unsent(url), submitted_unsent(url)
    with session_scope(url) as session:
        db_outbox.dequeue(session, job_ids=[working, held], task="ingest.run")
    app.send_task("ingest.run", kwargs={"job_id": str(held)})
    age(url, held, 10)
    with app.connection_for_read() as conn:
        message = conn.default_channel.basic_get("ingest", no_ack=False)  # taken, not acknowledged
        assert message is not None and broker.llen("ingest") == 0
        assert set(stalls.unacked_jobs(broker)) == {held}
        with session_scope(url) as session:
            assert stalls.find(session, settings, broker) == []  # taken a moment ago

        (tag,) = broker.zrange("unacked_index", 0, -1)
        broker.zadd("unacked_index", {tag: time.time() - 60})  # taken a minute ago...
        assert claim(working, Stage.INGEST, lambda s, j: j) is not None  # ...by a live process of the stage
        while not liveness.alive(broker, [liveness.worker_id()]):
            time.sleep(0.05)
        age(url, working, 1, claimed_at=utcnow() - timedelta(seconds=1))
        with session_scope(url) as session:
            assert stalls.find(session, settings, broker) == []

        end_job(working, JobError("internal_error", "the batch ended"))  # no live claim in ingest now
        with session_scope(url) as session:
            found = {job.job_id: job.why for job in stalls.find(session, settings, broker)}
        assert found == {held: stalls.Why.MESSAGE_LOST}
        message.ack()


def test_a_hung_claim_is_resent_counted_and_its_process_told_to_stop(world, configure) -> None:
    url, app, broker = world
    configure(RECAP_STAGE_TIME_LIMIT_S="1", RECAP_STAGE_KILL_GRACE_S="1")
    job_id = submitted_unsent(url)
    with session_scope(url) as session:
        db_outbox.dequeue(session, job_ids=[job_id], task="ingest.run")
    stuck = "stuck-host:7"  # not this process: its heartbeat would obey the word
    broker.set(liveness.PREFIX + stuck, "1")  # alive, but no progress for 10 s
    age(url, job_id, 10, status="ingesting", claimed_by=stuck, claimed_at=utcnow() - timedelta(seconds=10))

    assert sweep_once(app, get_settings(), broker).resent == 1
    assert broker.get(liveness.STOP_PREFIX + stuck) is not None
    assert liveness.resends(broker) == {("ingest", "hung"): 1}


def test_a_process_told_to_stop_stops_beating_and_exits_with_its_stacks(redis_url, tmp_path) -> None:
    me = "test-host:1"
    broker = redis.Redis.from_url(redis_url)
    broker.set(liveness.STOP_PREFIX + me, "told by the test")
    broker.set(liveness.PREFIX + me, "1")
    code = (
        "from shared import liveness; from shared.config import get_settings; "
        f"liveness._beat_once(liveness.client(get_settings()), get_settings(), {me!r}); print('went on')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=os.environ | {"REDIS_URL": redis_url},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 75 and "went on" not in done.stdout
    assert "told by the test" in done.stderr and "_beat_once" in done.stderr  # the reason, then its stacks
    assert broker.get(liveness.PREFIX + me) is None


def test_a_batch_sends_its_jobs_back_without_an_eta(world, configure) -> None:
    """celery-batches never runs an ETA request (it compares an epoch time with a monotonic one): a batched
    queue must only ever get messages due now."""
    url, app, broker = world
    configure(RECAP_DB_RETRY_DELAY_S="0.2")
    jobs = [submitted_unsent(url) for _ in range(2)]
    started = time.monotonic()
    send_back(app, "small.run", jobs)
    assert time.monotonic() - started >= 0.2  # waited in the worker instead
    sent = [json.loads(raw) for raw in broker.lrange("small", 0, -1)]
    assert len(sent) == 2 and all(message["headers"]["eta"] is None for message in sent)
