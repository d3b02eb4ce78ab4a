"""Both tiers run once over a meetings file (QMSum-style JSONL): what `recap calibrate` and `recap eval` measure.

Meetings go through the real ingestion parser and the workers' own summarizers, gate scores and prices, so the
numbers are those the stack would produce for the same transcripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recap.call_cache import CachedBackend, CallCache, identity
from services.gate.policy import escalates, threshold_for_rate
from services.ingestion.parse import parse
from services.small_model.summarize import gate_scores
from shared.backends.base import Backend
from shared.backends.load import load, spec_for
from shared.config import Tier, get_settings
from shared.costs import stage_cost
from shared.errors import InputError
from shared.inference.longform import Summarizer
from shared.scores import given_by_all


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
                parsed = parse(
                    raw,
                    max_bytes=settings.max_transcript_bytes,
                    max_turns=settings.max_turns,
                    format="json",
                    cleaning=settings.cleaning,
                )
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


@dataclass(frozen=True)
class Calibration:
    rate: float  # the escalation rate the thresholds aim at
    thresholds: dict[str, float]  # per score
    realized: dict[str, float]  # per score: the rate its threshold escalates on the calibration set
    small_cost_usd: float  # c_s: mean per job on the calibration set
    large_cost_usd: float | None  # c_l: measured or given (budget calibration only)


def calibrate(small: Sequence[TierRun], *, rate: float, large_cost_usd: float | None = None) -> Calibration:
    """Every score's threshold for `rate` on these small-model runs (the rate-quantile of the score)."""
    thresholds, realized = {}, {}
    for name in given_by_all(r.scores for r in small):
        values = [r.scores[name] for r in small]
        thresholds[name] = threshold_for_rate(name, values, rate)
        realized[name] = sum(escalates(name, v, thresholds[name]) for v in values) / len(values)
    return Calibration(
        rate, thresholds, realized, sum(r.cost_usd for r in small) / len(small), large_cost_usd
    )


def write_gate_file(path: Path, values: dict[str, object]) -> None:
    """Replaces the gate file in one step (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, default=str) + "\n")
    tmp.replace(path)
