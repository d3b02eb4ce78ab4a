"""Typed shapes that cross a boundary: a stage's usage, a turn, and the job as users see it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator

from shared.nesting import RENDER_DEPTH, depth


class Turn(BaseModel):
    speaker: str | None
    text: str
    start: float | None = None
    end: float | None = None


class Usage(BaseModel):
    """What one stage run consumed, before pricing."""

    model: str
    device: str
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    batch_size: int = 1


class ErrorInfo(BaseModel):
    code: str
    message: str


class GateView(BaseModel):
    score_name: str
    score: float
    threshold: float
    decision: str  # accept | escalate | degraded
    policy: str
    target_rate: float | None = None
    reason: str


class StageView(BaseModel):
    stage: str
    model: str | None
    device: str | None
    input_tokens: int
    output_tokens: int
    seconds: float
    batch_size: int
    attempt: int = 1  # one row per attempt (each delivery that claimed the job), never overwritten
    deliveries: int
    outcome: str | None = None  # ok | failed | superseded | interrupted | yielded; None while it runs
    cost_usd: float
    started_at: datetime | None = None  # its claim
    finished_at: datetime | None = None  # its cost recorded


class SummaryView(BaseModel):
    """A tier's summary of the job and how it was made."""

    tier: str
    model: str
    chunks: int | None
    levels: int | None
    calls: int | None
    truncation_ratio: float | None


class DeliveryView(BaseModel):
    """One webhook POST: the receiver's status code (None: no answer, see `error`) and latency."""

    attempt: int
    status_code: int | None
    latency_ms: float | None
    error: str | None
    at: datetime


class WebhookView(BaseModel):
    url: str
    state: str  # pending | delivered | failed
    attempts: list[DeliveryView] = []


class JobView(BaseModel):
    """`recap status --json` prints this; `recap submit --json` prints it without gate and stages."""

    # Built from a `Job` row with `from_attributes`: its `id` and `source_name` arrive under these names.
    job_id: str = Field(validation_alias=AliasChoices("job_id", "id"))
    tenant: str
    status: str
    tier: str | None
    summary: str | None
    cost_usd: float = 0.0
    error: ErrorInfo | None = None
    source: str | None = Field(validation_alias=AliasChoices("source", "source_name"))
    source_format: str | None
    summary_length: str
    # Of the summary the job ended with (else the small one): chunks read, and the share of tokens unread.
    chunks: int | None = None
    truncation_ratio: float | None = None
    created_at: datetime
    finished_at: datetime | None
    gate: GateView | None = None
    summaries: list[SummaryView] = []
    stages: list[StageView] = []
    # The submitter's own metadata, as given; the webhook's delivery state; when the text was erased (DELETE or
    # RECAP_RETENTION_DAYS: transcript and summaries gone, costs kept).
    metadata: dict[str, Any] | None = Field(default=None, validation_alias=AliasChoices("meta", "metadata"))
    webhook: WebhookView | None = None
    erased_at: datetime | None = None

    @field_validator("job_id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> str:
        return str(value)

    @field_validator("metadata")
    @classmethod
    def _renderable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Metadata stored before the API bounded its depth would make this job, and every page listing it,
        # impossible to render: it is shown as null instead (the row keeps it).
        return None if value is not None and depth(value) > RENDER_DEPTH else value
