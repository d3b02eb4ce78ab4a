"""What the API reads and answers, beyond shared/schemas.py's JobView: the bodies as OpenAPI shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.prompts import SummaryLength
from shared.schemas import JobView

MAX_NAME = 512  # a job's source name (a title or a file's name): the column's width
FORMATS = ("vtt", "srt", "txt", "json")


class JobRequest(BaseModel):
    """A transcript as JSON: its turns, as `recap submit` reads a .json file."""

    turns: list[dict[str, Any]] = Field(
        description='Turns in order: {"speaker": str | null, "text": str, "start": s | null, "end": s | null}'
    )
    title: str | None = Field(None, max_length=MAX_NAME, description="Shown as the job's source")
    length: SummaryLength = SummaryLength.MEDIUM
    webhook_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] | None = None


class JobPage(BaseModel):
    data: list[JobView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one")


class TierUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: float


class UsageReport(BaseModel):
    tenant: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    jobs: int
    by_status: dict[str, int]
    tiers: dict[str, TierUsage] = Field(description="small, large, and cpu (ingestion and the gate)")
    cost_usd: float
    gated: int
    escalated: int
    escalation_rate: float | None
    always_large_usd: float = Field(description="What sending every job to the large model would have cost")
    cost_avoided_usd: float = Field(description="always_large_usd minus cost_usd: what the gate saved")
    always_large_estimate: str

    model_config = {"populate_by_name": True}


MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "a .vtt, .srt, .txt or .json transcript",
        },
        "format": {"type": "string", "enum": list(FORMATS), "description": "else detected"},
        "length": {"type": "string", "enum": [s.value for s in SummaryLength]},
        "webhook_url": {"type": "string", "maxLength": 2048},
        "metadata": {"type": "string", "description": "a JSON object, returned with the job"},
    },
}
