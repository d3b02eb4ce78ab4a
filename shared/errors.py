"""Domain errors. A `JobError` carries a stable code and a message a user can act on."""

from __future__ import annotations


class JobError(Exception):
    """Ends a job with `status` (rejected: the input is at fault; failed: we are) and a specific code."""

    status = "failed"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InputError(JobError):
    """The transcript cannot be summarized as sent; the job is rejected, the workers carry on."""

    status = "rejected"


class ModelLoadError(JobError):
    """A configured model could not be loaded (not cached and no network, or a bad folder)."""


def stage_timeout(limit_s: float) -> JobError:
    return JobError(
        "stage_timeout",
        f"the stage ran past its time limit of {limit_s:g} s (RECAP_STAGE_TIME_LIMIT_S); "
        "the job can be retried with `recap jobs retry`",
    )
