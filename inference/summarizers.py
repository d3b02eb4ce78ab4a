"""The process's summarizer per tier: its model loaded once, on first use, with the tier's settings."""

from __future__ import annotations

from collections.abc import Sequence

from inference.backends.load import load, spec_for
from inference.longform import LongSummary, Summarizer, Turns
from inference.slices import Memo, Slice
from shared.config import Settings, get_settings
from shared.prompts import SummaryLength
from shared.schemas import Usage
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
    tier: Tier, documents: Sequence[tuple[tuple[Turns, SummaryLength], Memo]], *, scores: bool
) -> list[LongSummary]:
    """A model stage's work over its batch: every document summarized (chunked when long) in one pass, each for
    at most RECAP_SLICE_S of new calls per visit (a longer one comes back `parked`, its calls in its memo)."""
    seconds = get_settings().slice_s
    return summarizer(tier).summarize(
        [document for document, _ in documents],
        scores=scores,
        slices=[Slice(memo, seconds) for _, memo in documents],
    )


def slice_spent(tier: Tier, done: LongSummary) -> Usage | None:
    """What a parked document's visit spent (billed as its slice); None for a finished one."""
    return done.usage(summarizer(tier).model) if done.parked else None
