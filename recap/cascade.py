"""Both tiers run once over a meetings file (QMSum-style JSONL): what `recap calibrate` and `recap eval` measure.

Meetings go through the real ingestion parser and the workers' own summarizers, gate scores and prices, so the
numbers are those the stack would produce for the same transcripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.backends.base import Backend
from inference.backends.load import load, spec_for
from inference.longform import Summarizer
from recap.call_cache import CachedBackend, CallCache, identity
from services.ingest.parse import parse_as_configured
from services.small.stage import gate_scores
from shared.config import get_settings
from shared.costs import stage_cost
from shared.errors import InputError
from shared.states import Tier


@dataclass(frozen=True)
class Meeting:
    id: str
    turns: list[tuple[str | None, str]]
    reference: str | None  # the human general summary, when the file has one


@dataclass(frozen=True)
class TierRun:
    text: str
    scores: dict[str, float]  # the gate's scores (small tier only)
    cost_usd: float
    seconds: float


def load_meetings(path: Path, *, limit: int | None = None, domain: str | None = None) -> list[Meeting]:
    """Meetings of a JSONL file, each `{"id", "turns": [{"speaker", "text"}], "general_summary"?, "domain"?}`;
    with `domain`, only that domain's (QMSum: product, academic, committee)."""
    settings = get_settings()
    meetings: list[Meeting] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if limit is not None and len(meetings) >= limit:
                break
            try:
                row = json.loads(line)
                if domain is not None and row.get("domain") != domain:
                    continue
                raw = json.dumps({"turns": row["turns"]}).encode()
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(
                    "bad_meetings_file", f"{path}:{number}: not a meeting with a 'turns' list ({exc})"
                ) from exc
            try:
                parsed = parse_as_configured(raw, format="json", settings=settings)
            except InputError as exc:
                raise InputError(exc.code, f"{path}:{number}: {exc.message}") from exc
            meetings.append(
                Meeting(
                    id=str(row.get("id", number)),
                    turns=[(t.speaker, t.text) for t in parsed.turns],
                    reference=row.get("general_summary"),
                )
            )
    if not meetings:
        raise InputError(
            "bad_meetings_file", f"{path} holds no meetings" + (f" of domain {domain!r}" if domain else "")
        )
    return meetings


def words(meeting: Meeting) -> int:
    return sum(len(text.split()) for _, text in meeting.turns)


def tier_summarizer(tier: Tier, cache: CallCache | None = None) -> Summarizer:
    """The workers' summarizer for a tier; with `cache`, its model calls are kept in (and replayed from) there."""
    settings = get_settings()
    spec = spec_for(settings, tier)
    model: Backend = load(spec)
    if cache is not None:
        model = CachedBackend(model, cache, identity(spec))
    return Summarizer(model, settings.tier(tier))


def run_tier(
    meetings: Sequence[Meeting],
    tier: Tier,
    *,
    cache: CallCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[TierRun]:
    """One tier's summary, cost and (small tier) gate scores for every meeting, in the tier's batch size;
    `progress` hears the words of each batch done."""
    settings = get_settings()
    tool = tier_summarizer(tier, cache)
    price = settings.price_for(tool.model.name, tool.model.device)
    scored = tier == "small"
    runs: list[TierRun] = []
    for at in range(0, len(meetings), tool.tier.batch_size):
        batch = meetings[at : at + tool.tier.batch_size]
        done = tool.summarize([(m.turns, settings.default_summary_length) for m in batch], scores=scored)
        for d in done:
            cost = stage_cost(
                price, input_tokens=d.input_tokens, output_tokens=d.output_tokens, seconds=d.seconds
            )
            runs.append(TierRun(d.text, gate_scores(d) if scored else {}, float(cost), d.seconds))
        if progress:
            progress(sum(words(m) for m in batch))
    return runs
