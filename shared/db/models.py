"""Tables: jobs, their transcripts and summaries, the per-stage cost ledger, gate decisions, the outbox, and the
API's tenants, idempotency keys and webhook deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from shared.states import TERMINAL, Decision, JobStatus, Tier

__all__ = ["TERMINAL", "Decision", "JobStatus", "Tier"]

E = TypeVar("E", bound=StrEnum)


def table_of(model: type[SQLModel]) -> Table:
    """A table class's Core table, for Core statements (SQLModel sets `__table__` without declaring it)."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # SQLModel's metaclass sets it
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its plain string (the columns stay VARCHAR; no database enum type to migrate)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class WebhookState(StrEnum):
    PENDING = "pending"  # the job has not ended, or its delivery is still being tried
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # refused URL, or no 2xx within RECAP_WEBHOOK_RETRY_HOURS


class Job(SQLModel, table=True):
    __table_args__ = (
        Index("ix_job_tenant_created", "tenant", "created_at"),
        Index("ix_job_tenant_status", "tenant", "status"),  # the API's jobs-in-flight count
        Index("ix_job_webhook_due", "webhook_state", "webhook_due_at"),  # the sweeper's due deliveries
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant: str = Field(default="default", max_length=128)
    status: JobStatus = Field(default=JobStatus.QUEUED, sa_type=EnumText(JobStatus, 16), index=True)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    source_name: str | None = Field(default=None, max_length=512)
    source_format: str | None = Field(default=None, max_length=16)
    requested_format: str | None = Field(default=None, max_length=16)  # a submitter's override of detection
    summary_length: str = Field(default="medium", max_length=8)  # short | medium | long
    summary: str | None = None
    tier: Tier | None = Field(default=None, sa_type=EnumText(Tier, 8))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Which process works on the job in its current stage (host:pid; its heartbeat says whether it lives).
    claimed_by: str | None = Field(default=None, max_length=160)
    claimed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    sweeps: int = 0  # times the stall sweeper sent the current stage again; bounded by max_deliveries
    requeued_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # `recap jobs retry`
    error_stage: str | None = Field(default=None, max_length=16)  # the stage a failed job failed in
    # The API's: where to POST the job when it ends, and the submitter's own metadata (returned as given).
    webhook_url: str | None = Field(default=None, max_length=2048)
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    webhook_state: WebhookState | None = Field(default=None, sa_type=EnumText(WebhookState, 16))
    # When the next delivery may start: the end of the job, then each retry's backoff; a claimed delivery's
    # lease in between (a notify worker that died mid-delivery is retried after it).
    webhook_due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    erased_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # text deleted


class Transcript(SQLModel, table=True):
    job_id: uuid.UUID = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    turns: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    n_turns: int | None = None
    n_words: int | None = None


class Summary(SQLModel, table=True):
    """A model's output for a job: the small one's (with its uncertainty scores) and, if escalated, the large one's."""

    __table_args__ = (UniqueConstraint("job_id", "tier"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    tier: Tier = Field(sa_type=EnumText(Tier, 8))
    model: str = Field(max_length=512)
    text: str
    scores: dict[str, float] | None = Field(default=None, sa_column=Column(JSON))
    # How it was made: transcript chunks, generation rounds, generate() rows, share of the transcript unread.
    chunks: int | None = None
    levels: int | None = None
    calls: int | None = None
    truncation_ratio: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class RunOutcome(StrEnum):
    """How a ledger row's attempt ended; an open row (no outcome yet) is an attempt still running."""

    OK = "ok"  # its result moved the job on: the one billed result of the stage
    FAILED = "failed"  # it ended the job with a code
    SUPERSEDED = "superseded"  # a concurrent duplicate moved the job first; its compute is still billed
    INTERRUPTED = "interrupted"  # its process died or hung: seconds as far as known, tokens unknown (0)
    YIELDED = "yielded"  # a slice of a long job: part of the work (billed), then the job queued again


class StageRun(SQLModel, table=True):
    """The cost ledger: one row per attempt of a stage (each delivery that claimed the job), never overwritten;
    a job's cost is the sum of its attempts."""

    __table_args__ = (UniqueConstraint("job_id", "stage", "attempt"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    stage: str = Field(max_length=16)
    attempt: int = 1  # 1, 2, ... per (job, stage), over the job's whole life
    deliveries: int = 1  # this attempt's place among the stage's deliveries since the job was (re)queued
    outcome: RunOutcome | None = Field(default=None, sa_type=EnumText(RunOutcome, 16))
    model: str | None = Field(default=None, max_length=512)
    device: str | None = Field(default=None, max_length=32)
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    batch_size: int = 1
    price_input_per_mtok: Decimal = Field(default=Decimal(0), sa_type=Numeric(18, 10))
    price_output_per_mtok: Decimal = Field(default=Decimal(0), sa_type=Numeric(18, 10))
    price_per_second: Decimal = Field(default=Decimal(0), sa_type=Numeric(18, 10))
    price_version: str | None = Field(default=None, max_length=32)
    cost_usd: Decimal = Field(default=Decimal(0), sa_type=Numeric(18, 10))
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class GateDecision(SQLModel, table=True):
    """The gate's verdict: accept, escalate, or degraded (the policy escalated, a budget refused it)."""

    # The online policy reads its recent decisions for one score in creation order.
    __table_args__ = (Index("ix_gate_decision_policy_score_created", "policy", "score_name", "created_at"),)

    job_id: uuid.UUID = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    score_name: str = Field(max_length=64)
    score: float
    threshold: float
    policy: str = Field(max_length=32)
    target_rate: float | None = None  # the rate the policy aimed at (target_rate, budget, online)
    decision: Decision = Field(sa_type=EnumText(Decision, 16))
    reason: str
    scores: dict[str, float] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Outbox(SQLModel, table=True):
    """A stage message written in the transaction that moved its job; deleted once Redis has it. A row that
    outlives its sender (killed between commit and send, or Redis down) is sent by the sweeper's relay."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    task: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)


class ModelCall(SQLModel, table=True):
    """A finished model call of a long job in a model stage, kept between the stage's slices (a visit makes at
    most RECAP_SLICE_S of new calls, then the job queues again); deleted when the stage saves or the job ends."""

    job_id: uuid.UUID = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    stage: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=64)  # inference/slices.py: call_key
    generation: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class BudgetSpend(SQLModel, table=True):
    """Large-model spend of a scope ("global" or "tenant:<name>") in a period: reservations plus settled costs."""

    scope: str = Field(primary_key=True, max_length=160)
    period_start: datetime = Field(primary_key=True, sa_type=DateTime(timezone=True))
    spent_usd: Decimal = Field(default=Decimal(0), sa_type=Numeric(18, 10))


class BudgetReservation(SQLModel, table=True):
    """What an escalation reserved; settled to the large stage's real cost, or released if it never ran."""

    job_id: uuid.UUID = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    tenant: str = Field(max_length=128)
    period_start: datetime = Field(sa_type=DateTime(timezone=True))
    amount_usd: Decimal = Field(sa_type=Numeric(18, 10))
    settled: bool = False


class Tenant(SQLModel, table=True):
    """An API customer. Neither its key nor its webhook secret is stored: the key as its SHA-256 (keys are
    random and high-entropy, so a slow hash adds nothing), the secret derived from RECAP_SECRET_KEY and a salt."""

    name: str = Field(primary_key=True, max_length=128)
    key_hash: str = Field(max_length=64, unique=True)
    key_prefix: str = Field(max_length=16)  # the key's first characters, to tell keys apart in listings
    webhook_salt: str = Field(max_length=64)  # rotated by `recap tenants rotate-secret`
    budget_usd: Decimal | None = Field(default=None, sa_type=Numeric(18, 10))  # large-model budget per period
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # `recap tenants rotate-key`: the key before, accepted until RECAP_API_KEY_GRACE_S after the rotation
    previous_key_hash: str | None = Field(default=None, max_length=64, index=True)
    previous_key_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class IdempotencyKey(SQLModel, table=True):
    """An `Idempotency-Key` a tenant sent, the hash of the request it came with, and the job it created."""

    tenant: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    job_id: uuid.UUID = Field(foreign_key="job.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class WebhookAttempt(SQLModel, table=True):
    """One POST of a job's webhook: what the receiver answered (or why there was no answer) and how fast."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    attempt: int
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = Field(default=None, max_length=512)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
