"""The process's summarizer per tier: its model loaded once, on first use, with the tier's settings."""

from __future__ import annotations

from collections.abc import Sequence

from inference.backends.load import load, spec_for
from inference.longform import LongSummary, Summarizer, Turns
from shared.config import Settings, get_settings
from shared.prompts import SummaryLength
from shared.states import Tier

_made: dict[Tier, tuple[Settings, Summarizer]] = {}


def summarizer(tier: Tier) -> Summarizer:
    """Made once per settings object: building one measures the tier's prompts with the tokenizer (milliseconds
    each job would pay again). New settings (tests, the benchmark reload them) make a new one."""
    settings = get_settings()
    made = _made.get(tier)
    if made is None or made[0] is not settings:
        made = _made[tier] = (settings, Summarizer(load(spec_for(settings, tier)), settings.tier(tier)))
    return made[1]


def summarize(
    tier: Tier, documents: Sequence[tuple[Turns, SummaryLength]], *, scores: bool
) -> list[LongSummary]:
    """A model stage's work over its batch: every document summarized (chunked when long) in one pass."""
    return summarizer(tier).summarize(list(documents), scores=scores)
