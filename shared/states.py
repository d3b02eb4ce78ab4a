"""The values a job's state takes: its status, the tier that summarized it, the gate's decision."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job only moves forward: queued -> ingesting -> summarizing -> gating [-> escalated] -> an end state.

    `degraded`: finished with the small summary because a large-model budget was spent (the reason is kept).
    """

    QUEUED = "queued"
    INGESTING = "ingesting"
    SUMMARIZING = "summarizing"
    GATING = "gating"
    ESCALATED = "escalated"
    DONE = "done"
    DEGRADED = "degraded"
    REJECTED = "rejected"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.DONE, JobStatus.DEGRADED, JobStatus.REJECTED, JobStatus.FAILED})


class Tier(StrEnum):
    SMALL = "small"
    LARGE = "large"


class Decision(StrEnum):
    ACCEPT = "accept"
    ESCALATE = "escalate"
    DEGRADED = "degraded"  # the policy escalated; a spent budget kept the small summary
