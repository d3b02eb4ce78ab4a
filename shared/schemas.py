"""Typed shapes that cross a boundary: a stage's usage, a turn, and the job as users see it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
    decision: str
    policy: str
    reason: str


class StageView(BaseModel):
    stage: str
    model: str | None
    device: str | None
    input_tokens: int
    output_tokens: int
    seconds: float
    batch_size: int
    deliveries: int
    cost_usd: float


class JobView(BaseModel):
    """`recap status --json` prints this; `recap submit --json` prints it without gate and stages."""

    job_id: str
    tenant: str
    status: str
    tier: str | None
    summary: str | None
    cost_usd: float
    error: ErrorInfo | None
    source: str | None
    source_format: str | None
    created_at: datetime
    finished_at: datetime | None
    gate: GateView | None = None
    stages: list[StageView] = []
