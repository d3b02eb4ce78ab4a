"""The one retry delay every part of Recap waits: doubling from a first delay, capped."""

from __future__ import annotations


def doubling(first_s: float, retries: int, cap_s: float) -> float:
    """Seconds to wait after `retries` earlier retries (0: the first wait is `first_s`), at most `cap_s`."""
    return float(min(first_s * 2.0**retries, cap_s))
