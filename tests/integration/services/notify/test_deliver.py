"""A webhook delivery as a plain function, on each database, against a real receiver: signed, retried with
backoff until delivered, given up past its window, refused for an internal address, every attempt kept."""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col
from standardwebhooks import Webhook

from services.notify.deliver import deliver
from services.sweeper.sweep import erase_expired
from shared import tenants
from shared.config import get_settings
from shared.db import deliveries, views
from shared.db import repository as repo
from shared.db.models import Job, Transcript, WebhookState, utcnow
from shared.db.session import session_scope
from shared.errors import InputError
from shared.webhooks import SIGNATURE_HEADER, verify
from tests.factories import MEETING
from tests.receiver import Receiver


def ended_job(url: str, webhook_url: str | None, tenant: str = "acme") -> uuid.UUID:
    """A job with a webhook that has just ended (rejected: the quickest real end)."""
    with session_scope(url) as session:
        job = repo.create_job(
            session, raw=MEETING, tenant=tenant, source_name="m.txt", webhook_url=webhook_url
        )
        repo.end_with_error(session, job_id=job.id, error=InputError("empty_file", "nothing in it"))
        return job.id


@pytest.fixture
def webhooks(db_url, configure, tmp_path):
    configure(
        DATABASE_URL=db_url,
        RECAP_VAR_DIR=str(tmp_path / "var"),
        RECAP_WEBHOOK_ALLOW_PRIVATE="true",
        RECAP_WEBHOOK_BACKOFF_S="0.2",
        RECAP_WEBHOOK_TIMEOUT_S="5",
    )
    with session_scope(db_url) as session:
        issued = tenants.create(session, get_settings(), "acme")
    return db_url, issued.webhook_secret


def test_a_failed_delivery_is_retried_after_its_backoff_then_delivered_signed(webhooks) -> None:
    url, secret = webhooks
    with Receiver([500]) as receiver:
        job_id = ended_job(url, f"{receiver.url}/hooks/recap")
        assert deliver(job_id) is WebhookState.PENDING  # 500: retried later
        assert deliver(job_id) is None  # not due yet: its backoff has not passed
        with session_scope(url) as session:
            assert deliveries.due(session, limit=10) == []
        time.sleep(0.25)
        with session_scope(url) as session:
            assert deliveries.due(session, limit=10) == [job_id]  # what the sweeper sends again
        assert deliver(job_id) is WebhookState.DELIVERED
        assert deliver(job_id) is None  # delivered once
        first, second = receiver.received
    assert first.path == second.path == "/hooks/recap"
    for request in (first, second):
        assert verify(secret, request.body, request.headers[SIGNATURE_HEADER])
        assert json.loads(request.body)["job_id"] == str(job_id)
        assert json.loads(request.body)["status"] == "rejected"
    assert (
        first.headers["Recap-Delivery"] == f"{job_id}.1" and second.headers["Recap-Delivery"] == f"{job_id}.2"
    )
    with session_scope(url) as session:
        view = views.job_view(session, job_id=job_id)
    assert view is not None and view.webhook is not None
    assert view.webhook.state == "delivered"
    assert [(a.attempt, a.status_code) for a in view.webhook.attempts] == [(1, 500), (2, 200)]
    assert all(a.latency_ms is not None and a.latency_ms > 0 for a in view.webhook.attempts)


def test_a_receiver_that_never_answers_is_given_up_after_the_retry_window(webhooks, configure) -> None:
    url, _ = webhooks
    configure(RECAP_WEBHOOK_RETRY_HOURS="0")
    with Receiver() as receiver:
        dead = receiver.url  # a port nobody listens on once the receiver stops
    job_id = ended_job(url, f"{dead}/hook")
    assert deliver(job_id) is WebhookState.FAILED
    with session_scope(url) as session:
        view = views.job_view(session, job_id=job_id)
    assert view is not None and view.webhook is not None
    [attempt] = view.webhook.attempts
    assert attempt.status_code is None and attempt.error and "ConnectError" in attempt.error


def test_an_internal_address_is_refused_again_at_delivery(webhooks, configure) -> None:
    url, _ = webhooks
    configure(RECAP_WEBHOOK_ALLOW_PRIVATE="false")
    with Receiver() as receiver:
        job_id = ended_job(url, f"{receiver.url}/hook")  # accepted earlier; the rules changed since
        assert deliver(job_id) is WebhookState.FAILED
        assert receiver.received == []
    with session_scope(url) as session:
        view = views.job_view(session, job_id=job_id)
    assert view is not None and view.webhook is not None
    assert view.webhook.state == "failed" and "webhook_url_refused" in (view.webhook.attempts[0].error or "")


@pytest.mark.parametrize("bad", ["http://8.8.8.8/\r\nX-Injected: 1", " http://8.8.8.8/"])
def test_a_stored_url_no_request_can_carry_ends_failed_with_its_attempt(webhooks, bad: str) -> None:
    """Stored before the API refused such URLs: one recorded attempt and the end, not retries forever."""
    url, _ = webhooks
    job_id = ended_job(url, bad)
    assert deliver(job_id) is WebhookState.FAILED
    assert deliver(job_id) is None
    with session_scope(url) as session:
        view = views.job_view(session, job_id=job_id)
    assert view is not None and view.webhook is not None
    [attempt] = view.webhook.attempts
    assert attempt.status_code is None and "webhook_url_invalid" in (attempt.error or "")


class Resolver:
    """DNS for one made-up name, answering from a list in turn (what a rebinding attacker's server does)."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name, self.answers, self.real = name, answers, socket.getaddrinfo

    def __call__(self, host: str, port: object, *args: object, **kwargs: object) -> object:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        ip = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]


def test_a_name_that_rebinds_to_loopback_after_the_check_never_reaches_it(
    webhooks, configure, monkeypatch
) -> None:
    url, _ = webhooks
    configure(RECAP_WEBHOOK_ALLOW_PRIVATE="false", RECAP_WEBHOOK_CONNECT_TIMEOUT_S="0.5")
    with Receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        job_id = ended_job(url, f"http://rebind.recap.test:{port}/hook")
        # Public to the check, loopback to any later lookup: the connection must go where the check looked.
        monkeypatch.setattr(socket, "getaddrinfo", Resolver("rebind.recap.test", ["1.1.1.1", "127.0.0.1"]))
        assert deliver(job_id) is WebhookState.PENDING
        assert receiver.received == []
    with session_scope(url) as session:
        view = views.job_view(session, job_id=job_id)
    assert view is not None and view.webhook is not None
    [attempt] = view.webhook.attempts
    assert attempt.status_code is None and attempt.error


def test_the_pinned_request_keeps_the_name_in_host_and_carries_both_signatures(webhooks, monkeypatch) -> None:
    url, secret = webhooks
    monkeypatch.setattr(socket, "getaddrinfo", Resolver("hooks.recap.test", ["127.0.0.1"]))
    with Receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        job_id = ended_job(url, f"http://user:pw@hooks.recap.test:{port}/hook?token=t")
        assert deliver(job_id) is WebhookState.DELIVERED
        [request] = receiver.received
    assert request.path == "/hook?token=t"
    assert request.headers["Host"] == f"hooks.recap.test:{port}"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert Webhook(secret).verify(request.body, request.headers)["job_id"] == str(job_id)
    assert request.headers["webhook-id"] == f"msg_{job_id}"
    assert verify(secret, request.body, request.headers[SIGNATURE_HEADER])


def test_a_job_without_a_webhook_is_never_delivered(webhooks) -> None:
    url, _ = webhooks
    job_id = ended_job(url, None)
    assert deliver(job_id) is None
    with session_scope(url) as session:
        assert deliveries.due(session, limit=10) == []


def test_retention_erases_old_text_and_keeps_the_job(webhooks, configure) -> None:
    url, _ = webhooks
    old, recent = ended_job(url, None), ended_job(url, None)
    with session_scope(url) as session:
        session.connection().execute(
            update(Job).where(col(Job.id) == old).values(finished_at=utcnow() - timedelta(days=31))
        )
    configure(RECAP_RETENTION_DAYS="30")
    assert erase_expired(get_settings()) == 1
    assert erase_expired(get_settings()) == 0  # erased once
    with session_scope(url) as session:
        assert session.get(Transcript, old) is None and session.get(Transcript, recent) is not None
        kept = views.job_view(session, job_id=old)
        assert kept is not None and kept.erased_at is not None and kept.source is None
        assert kept.status == "rejected" and kept.error is not None  # the job and its outcome stay
    configure(RECAP_RETENTION_DAYS="")
    assert erase_expired(get_settings()) == 0  # unset: nothing is erased
