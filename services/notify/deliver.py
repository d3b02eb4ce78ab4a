"""One webhook delivery as a plain function: claim the job's due delivery, POST the signed job object, record."""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from shared import tenants
from shared.backoff import doubling
from shared.config import Settings, get_settings
from shared.db import deliveries, views
from shared.db.models import WebhookState, as_utc, utcnow
from shared.db.session import session_scope
from shared.errors import InputError
from shared.webhooks import SIGNATURE_HEADER, pin, sign, standard_headers

log = logging.getLogger(__name__)

USER_AGENT = "Recap-Webhooks/1"


def backoff_s(attempt: int, settings: Settings) -> float:
    """Seconds before attempt `attempt + 1`: doubling from RECAP_WEBHOOK_BACKOFF_S, capped, with "equal jitter"
    (half fixed, half random) so a receiver that comes back is not hit by every retry at once."""
    delay = doubling(settings.webhook_backoff_s, attempt - 1, settings.webhook_backoff_max_s)
    return float(delay / 2 + random.uniform(0, delay / 2))


@dataclass(frozen=True)
class Sent:
    """What one POST came to: the receiver's status, or the error; a permanent error is not retried."""

    status: int | None = None
    error: str | None = None
    permanent: bool = False
    latency_ms: float = 0.0


def deliver(job_id: uuid.UUID, settings: Settings | None = None) -> WebhookState | None:
    """Delivers the job's webhook if it is due; the state it is left in (None: not due, or not ours)."""
    settings = settings or get_settings()
    lease = settings.webhook_timeout_s + 30  # past this a worker that died mid-POST is retried
    with session_scope(settings.database_url) as session:
        delivery = deliveries.claim(session, job_id=job_id, lease_s=lease)
        if delivery is None:
            return None
        view = views.job_view(session, job_id=job_id)
        salt = tenants.salt_of(session, delivery.tenant)
    assert view is not None
    sent = post(delivery, view.model_dump_json().encode(), salt, settings)
    next_at = utcnow() + timedelta(seconds=backoff_s(delivery.attempt, settings))
    state = _state(
        sent, next_at, as_utc(delivery.finished_at) + timedelta(hours=settings.webhook_retry_hours)
    )
    _record(delivery, sent, state, next_at, settings)
    return state


def _record(
    delivery: deliveries.Delivery, sent: Sent, state: WebhookState, next_at: datetime, settings: Settings
) -> None:
    with session_scope(settings.database_url) as session:
        deliveries.record(
            session,
            delivery=delivery,
            status_code=sent.status,
            latency_ms=round(sent.latency_ms, 2),
            error=sent.error,
            state=state,
            retry_at=next_at if state is WebhookState.PENDING else None,
        )
    log.info(
        "webhook %s: attempt %d, %s",
        state,
        delivery.attempt,
        sent.status if sent.status is not None else sent.error,
        extra={"job_id": str(delivery.job_id), "attempt": delivery.attempt, "status_code": sent.status},
    )


def post(delivery: deliveries.Delivery, body: bytes, salt: str | None, settings: Settings) -> Sent:
    """POSTs the signed body to the delivery's URL, checked again now and connected to the address checked (the
    name may resolve elsewhere since the job was submitted). Redirects are not followed: one could lead to an
    address the check refused."""
    started = time.perf_counter()
    try:
        pinned = pin(delivery.url, allow_private=settings.webhook_allow_private)
        if salt is None:
            raise InputError("webhook_tenant_unknown", f"tenant {delivery.tenant!r} has no webhook secret")
        secret = tenants.webhook_secret(settings, delivery.tenant, salt)
        headers = {
            "Host": pinned.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **standard_headers(secret, f"msg_{delivery.job_id}", body),  # one id per job: retries share it
            SIGNATURE_HEADER: sign(secret, body),
            "Recap-Delivery": f"{delivery.job_id}.{delivery.attempt}",
        }
        request = httpx.Request(
            "POST", pinned.url, content=body, headers=headers, extensions=pinned.extensions
        )
        timeout = httpx.Timeout(settings.webhook_timeout_s, connect=settings.webhook_connect_timeout_s)
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            status = client.send(request).status_code
    except InputError as exc:  # a name that does not resolve now may later; a refused one will not get better
        return Sent(None, f"{exc.code}: {exc.message}", exc.code != "webhook_host_unresolved", _ms(started))
    except Exception as exc:  # any failure (httpx.InvalidURL is no HTTPError) is a recorded attempt
        return Sent(None, f"{type(exc).__name__}: {exc}", latency_ms=_ms(started))
    return Sent(status, latency_ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _state(sent: Sent, next_at: datetime, give_up_at: datetime) -> WebhookState:
    if sent.status is not None and 200 <= sent.status < 300:
        return WebhookState.DELIVERED
    if sent.permanent or next_at > give_up_at:
        return WebhookState.FAILED
    return WebhookState.PENDING
