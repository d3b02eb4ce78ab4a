"""One webhook delivery as a plain function: claim the job's due delivery, POST the signed job object, record."""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import timedelta

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
    body = view.model_dump_json().encode()
    status: int | None = None
    error: str | None = None
    permanent = False
    started = time.perf_counter()
    try:
        # Checked again at delivery (the name may resolve elsewhere now), and the connection goes to that address.
        pinned = pin(delivery.url, allow_private=settings.webhook_allow_private)
        if salt is None:
            raise InputError("webhook_tenant_unknown", f"tenant {delivery.tenant!r} has no webhook secret")
        secret = tenants.webhook_secret(settings, delivery.tenant, salt)
        request = httpx.Request(
            "POST",
            pinned.url,
            content=body,
            headers={
                "Host": pinned.host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **standard_headers(secret, f"msg_{job_id}", body),  # one id per job: retries share it
                SIGNATURE_HEADER: sign(secret, body),
                "Recap-Delivery": f"{job_id}.{delivery.attempt}",
            },
            extensions=pinned.extensions,
        )
        timeout = httpx.Timeout(settings.webhook_timeout_s, connect=settings.webhook_connect_timeout_s)
        # Redirects are not followed: one could lead to an address the check refused.
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.send(request)
        status = response.status_code
    except InputError as exc:  # a name that does not resolve now may later; a refused one will not get better
        error, permanent = f"{exc.code}: {exc.message}", exc.code != "webhook_host_unresolved"
    except Exception as exc:  # any failure (httpx.InvalidURL is no HTTPError) is a recorded attempt
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - started) * 1000
    give_up_at = as_utc(delivery.finished_at) + timedelta(hours=settings.webhook_retry_hours)
    next_at = utcnow() + timedelta(seconds=backoff_s(delivery.attempt, settings))
    if status is not None and 200 <= status < 300:
        state = WebhookState.DELIVERED
    elif permanent or next_at > give_up_at:
        state = WebhookState.FAILED
    else:
        state = WebhookState.PENDING
    with session_scope(settings.database_url) as session:
        deliveries.record(
            session,
            delivery=delivery,
            status_code=status,
            latency_ms=round(latency_ms, 2),
            error=error,
            state=state,
            retry_at=next_at if state is WebhookState.PENDING else None,
        )
    log.info(
        "webhook %s: attempt %d, %s",
        state,
        delivery.attempt,
        status if status is not None else error,
        extra={"job_id": str(job_id), "attempt": delivery.attempt, "status_code": status},
    )
    return state
