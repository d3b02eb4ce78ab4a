"""The one Celery app every worker and client uses, configured from settings."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from celery.worker import state as worker_state

from shared import liveness, mailbox, progress
from shared.config import Settings, get_settings
from shared.deathsig import die_with_parent
from shared.logs import configure
from shared.stages import ROUTES


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("recap")
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        # A Redis restart is waited out, however long: a worker that gave up would only be restarted to wait.
        broker_connection_max_retries=None,
        broker_transport_options=transport_options(settings),
        # No result backend is used (task_ignore_result); were one configured, it would be bounded the same way.
        redis_socket_timeout=settings.redis_socket_timeout_s,
        redis_socket_connect_timeout=settings.redis_connect_timeout_s,
        redis_socket_keepalive=settings.redis_keepalive,
        redis_retry_on_timeout=settings.redis_retry_on_timeout,
        redis_backend_health_check_interval=settings.redis_health_check_interval_s,
        # JSON only: pickle would let anyone who can write to Redis run code in our workers.
        task_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        # State lives in the database; no result backend.
        task_ignore_result=True,
        task_routes=ROUTES,
        # Ack after the work: a worker that dies mid-stage gets its job redelivered (stages are idempotent).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Long tasks: take one at a time, so queue length shows the real backlog.
        worker_prefetch_multiplier=1,
        # Prefork stages (ingest, gate): the soft limit ends the job `stage_timeout`, the hard one the child.
        # Model batches are bounded in shared/batches.py: neither limit reaches celery-batches or the solo pool.
        task_soft_time_limit=settings.stage_time_limit_s,
        task_time_limit=settings.stage_time_limit_s + settings.stage_kill_grace_s,
        # Flower needs events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    return app


def transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's Redis transport, bounded: without these a consumer can wait forever on a connection that a
    restart or a stalled path left half-open (celery#8030, kombu#2007, celery#10205)."""
    return {
        # Redis redelivers an unacked task after this long: keep it above the slowest stage.
        "visibility_timeout": settings.visibility_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_keepalive": settings.redis_keepalive,
        "health_check_interval": settings.redis_health_check_interval_s,
        "retry_on_timeout": settings.redis_retry_on_timeout,
    }


@signals.worker_ready.connect
def watch_consumer(sender: Any = None, **_: Any) -> None:
    """The worker consumes now: its heartbeat starts, and watches that the consumer keeps taking messages."""
    queues = [queue.name for queue in sender.task_consumer.queues]
    progress.consuming(queues, room=lambda: not worker_state.reserved_requests)
    liveness.ensure_beating()
    mailbox.watch(create_app(Settings()), sender.hostname)


@signals.task_received.connect
def message_taken(**_: Any) -> None:
    progress.took()


@signals.worker_process_init.connect
def pool_child(**_: Any) -> None:
    """A prefork child runs tasks and consumes nothing: it watches only its own tasks, and dies with its worker."""
    progress.forget_consumer()
    die_with_parent()


@signals.celeryd_init.connect  # a worker's first step: even Celery's start-up warnings come out in our format
@signals.setup_logging.connect  # and Celery's own logging setup is skipped
def worker_logs(loglevel: Any = None, **_: Any) -> None:
    """Workers log as the settings say (JSON lines with job ids by default)."""
    settings = get_settings()
    configure(loglevel or settings.log_level, settings.log_format)


app = create_app()
