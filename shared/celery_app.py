"""The one Celery app every worker and client uses, configured from settings."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from shared.config import Settings, get_settings
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
        # Redis redelivers an unacked task after this long: keep it above the slowest stage.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
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


@signals.celeryd_init.connect  # a worker's first step: even Celery's start-up warnings come out in our format
@signals.setup_logging.connect  # and Celery's own logging setup is skipped
def worker_logs(loglevel: Any = None, **_: Any) -> None:
    """Workers log as the settings say (JSON lines with job ids by default)."""
    settings = get_settings()
    configure(loglevel or settings.log_level, settings.log_format)


app = create_app()
