"""The process's summarizer per tier: its model loaded once, on first use, with the tier's settings."""

from __future__ import annotations

from shared.config import Tier, get_settings
from shared.inference.longform import Summarizer
from shared.inference.textmodel import cached_model


def summarizer(tier: Tier) -> Summarizer:
    settings = get_settings()
    tier_settings = settings.tier(tier)
    model = cached_model(tier_settings.model, settings.device, settings.torch_threads, settings.torch_compile)
    return Summarizer(model, tier_settings)
