"""Webhook retries back off exponentially, capped, with jitter."""

from __future__ import annotations

from services.notify.deliver import backoff_s
from shared.config import Settings


def test_the_backoff_doubles_up_to_its_cap_with_half_of_it_random() -> None:
    settings = Settings(_env_file=None, webhook_backoff_s=10, webhook_backoff_max_s=300)
    for attempt, full in [(1, 10), (2, 20), (3, 40), (5, 160), (6, 300), (12, 300)]:
        delays = [backoff_s(attempt, settings) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 4  # jittered: retries of many jobs spread out
