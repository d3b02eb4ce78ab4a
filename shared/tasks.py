"""Options every stage task shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

# Only a lost database is retried (with backoff); every other error already ended the job with a code.
RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}
