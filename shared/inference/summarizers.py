"""The process's summarizer per tier: its model loaded once, on first use, with the tier's settings."""

from __future__ import annotations

from shared.backends.load import load, spec_for
from shared.config import Tier, get_settings
from shared.inference.longform import Summarizer


def summarizer(tier: Tier) -> Summarizer:
    settings = get_settings()
    return Summarizer(load(spec_for(settings, tier)), settings.tier(tier))
