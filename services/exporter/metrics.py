"""Prometheus metrics, read at scrape time from where the truth lives: Redis list lengths and the database.

Nothing is counted in process memory, so every replica and every restart reports the same numbers: counters are
aggregates over rows that only ever accumulate (ended jobs, ledger rows, gate decisions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func
from sqlmodel import col, select

from shared import liveness, stalls
from shared.config import Settings
from shared.db.models import TERMINAL, GateDecision, Job, JobStatus, Outbox, StageRun
from shared.db.session import session_scope
from shared.stages import QUEUES, STAGES, TIER_OF_STAGE

# Seconds per stage run: ingestion and the gate take milliseconds, model stages seconds to minutes.
BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# The ledger's stages, as cost tiers: the two models, and the CPU stages around them.


class RecapCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = liveness.client(settings)

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._database()
        yield from self._reliability()

    def _reliability(self) -> Iterator[Metric]:
        with session_scope(self.settings.database_url) as session:
            found = stalls.find(session, self.settings, self.redis)
            failed = session.exec(
                select(Job.error_code, func.count())
                .where(Job.status == JobStatus.FAILED)
                .group_by(col(Job.error_code))
            ).all()
            unsent = session.exec(select(func.count()).select_from(Outbox)).one()
        stalled = GaugeMetricFamily(
            "recap_jobs_stalled",
            "Jobs the sweeper finds stalled now (it sends them again), by stage and why",
            labels=["stage", "why"],
        )
        counts = Counter((str(job.stage), str(job.why)) for job in found)
        for stage in STAGES:
            for why in stalls.Why:
                stalled.add_metric([str(stage), str(why)], counts[str(stage), str(why)])
        yield stalled
        resent = CounterMetricFamily(
            "recap_stall_resends",
            "Stalled jobs the sweeper sent again, by stage and why (message_lost must stay 0 in normal running)",
            labels=["stage", "why"],
        )
        done = liveness.resends(self.redis)
        for stage in STAGES:
            for why in stalls.Why:
                resent.add_metric([str(stage), str(why)], done.get((str(stage), str(why)), 0))
        yield resent
        dead = GaugeMetricFamily(
            "recap_dead_letters", "Failed jobs, by code (`recap jobs --status failed`)", labels=["code"]
        )
        for code, count in sorted(failed, key=lambda row: str(row[0])):
            dead.add_metric([code or "unknown"], count)
        yield dead
        yield GaugeMetricFamily(
            "recap_outbox_unsent", "Stage messages written but not yet handed to Redis", unsent
        )

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "recap_queue_depth", "Messages waiting in a stage's Redis list", labels=["queue"]
        )
        with self.redis.pipeline() as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
            pipe.hlen("unacked")
            *lengths, unacked = pipe.execute()
        for queue, length in zip(QUEUES, lengths, strict=True):
            depth.add_metric([queue], length)
        yield depth
        yield GaugeMetricFamily(
            "recap_unacked_messages",
            "Messages delivered to a worker and not yet acknowledged (all queues)",
            unacked,
        )

    def _database(self) -> Iterator[Metric]:
        with session_scope(self.settings.database_url) as session:
            by_status = dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all())
            runs = session.exec(
                select(
                    StageRun.stage,
                    func.count(),
                    func.coalesce(func.sum(StageRun.seconds), 0.0),
                    *(func.sum(case((col(StageRun.seconds) <= b, 1), else_=0)) for b in BUCKETS),
                )
                .where(col(StageRun.finished_at).is_not(None))
                .group_by(StageRun.stage)
            ).all()
            costs = session.exec(
                select(Job.tenant, StageRun.stage, func.coalesce(func.sum(StageRun.cost_usd), 0))
                .join(Job, col(Job.id) == col(StageRun.job_id))
                .group_by(Job.tenant, StageRun.stage)
            ).all()
            decisions = dict(
                session.exec(
                    select(GateDecision.decision, func.count()).group_by(GateDecision.decision)
                ).all()
            )

        ended = CounterMetricFamily("recap_jobs", "Jobs that ended, by how", labels=["status"])
        for ending in sorted(TERMINAL):
            ended.add_metric([ending], by_status.get(ending, 0))
        yield ended
        active = GaugeMetricFamily(
            "recap_jobs_active", "Jobs in progress, by stage status", labels=["status"]
        )
        for status, count in sorted(by_status.items()):
            if status not in TERMINAL:
                active.add_metric([status], count)
        yield active

        seconds = HistogramMetricFamily(
            "recap_stage_seconds", "Seconds of work per stage run", labels=["stage"]
        )
        for row in runs:
            stage, count, total = row[0], row[1], row[2]
            counts: list[int | None] = list(row[3:])
            buckets = [(str(b), int(c or 0)) for b, c in zip(BUCKETS, counts, strict=True)]
            seconds.add_metric([stage], buckets + [("+Inf", int(count))], float(total))
        yield seconds

        yield CounterMetricFamily(
            "recap_escalations", "Jobs the gate sent to the large model", decisions.get("escalate", 0)
        )
        yield CounterMetricFamily(
            "recap_degraded",
            "Jobs the gate wanted to escalate but a spent budget kept small",
            decisions.get("degraded", 0),
        )
        spend: dict[tuple[str, str], Decimal] = {}
        for tenant, stage, usd in costs:
            key = (tenant, TIER_OF_STAGE.get(stage, stage))
            spend[key] = spend.get(key, Decimal(0)) + Decimal(usd)
        cost = CounterMetricFamily(
            "recap_cost_usd", "USD spent, by tenant and tier", labels=["tenant", "tier"]
        )
        for (tenant, tier), usd in sorted(spend.items()):
            cost.add_metric([tenant, tier], float(usd))
        yield cost


def serve(settings: Settings, *extra: Collector) -> WSGIServer:
    """Serves /metrics from a daemon thread; the caller stops it with `.shutdown()`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecapCollector(settings))
    for collector in extra:
        registry.register(collector)
    server, _thread = start_http_server(settings.metrics_port, settings.metrics_address, registry=registry)
    return server
