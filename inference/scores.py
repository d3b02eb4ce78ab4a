"""The gate's scores: aggregations of the small model's per-token statistics. Pure Python, no torch.

A contract between two stages: the small stage computes them, the gate decides on them; both import it from here.

Each score says which way is unsure: margins and log-probabilities are low when the model hesitates; entropy,
the share of low-margin tokens, length and truncation are high. Thresholds stay in each score's own units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import fmean

from inference.stats import TokenStats
from shared.config import Settings
from shared.model_kinds import PROVIDES
from shared.percentile import percentile
from shared.states import Tier

__all__ = ["SCORES", "Generated", "Score", "TokenStats", "Unsure"]


@dataclass(frozen=True)
class Generated:
    """What a job's small-model run leaves for scoring: its calls' token statistics and how much it read."""

    calls: Sequence[TokenStats]
    input_tokens: int = 0
    truncation_ratio: float = 0.0


class Unsure(StrEnum):
    LOW = "low"  # a low value means the model was unsure (margins, log-probability)
    HIGH = "high"  # a high value means unsure (entropy, low-margin share, length, truncation)


@dataclass(frozen=True)
class Score:
    fn: Callable[[Generated, float], float]  # (the job's generation, the margin cut) -> value
    unsure: Unsure
    # What a job that emitted no token scores: as unsure as the score can be.
    empty: float = 0.0
    # The per-token statistic it reads (TokenStats' field), which the small backend must give; None: none.
    needs: str | None = "margins"


def _pooled(job: Generated, attr: str) -> list[float]:
    return [v for call in job.calls for v in getattr(call, attr)]


# Score name -> its aggregation over a job's calls (one per chunk, one per merge, one final). Token-level scores
# pool every call's tokens; the first-token margin is averaged over calls.
SCORES: dict[str, Score] = {
    "first_margin": Score(lambda j, _: fmean([c.margins[0] for c in j.calls if c.margins]), Unsure.LOW),
    "mean_margin": Score(lambda j, _: fmean(_pooled(j, "margins")), Unsure.LOW),
    "min_margin": Score(lambda j, _: min(_pooled(j, "margins")), Unsure.LOW),
    "p10_margin": Score(lambda j, _: percentile(_pooled(j, "margins"), 10), Unsure.LOW),
    "p25_margin": Score(lambda j, _: percentile(_pooled(j, "margins"), 25), Unsure.LOW),
    "median_margin": Score(lambda j, _: percentile(_pooled(j, "margins"), 50), Unsure.LOW),
    "low_margin_share": Score(
        lambda j, cut: fmean([float(m < cut) for m in _pooled(j, "margins")]), Unsure.HIGH, empty=1.0
    ),
    # Empty: the entropy of a uniform choice among 2**20 tokens, above any real vocabulary's.
    "mean_entropy": Score(
        lambda j, _: fmean(_pooled(j, "entropies")), Unsure.HIGH, empty=math.log(2**20), needs="entropies"
    ),
    "mean_logprob": Score(
        lambda j, _: fmean(_pooled(j, "logprobs")), Unsure.LOW, empty=-1e3, needs="logprobs"
    ),
    # Quantiles of the chosen tokens' log-probabilities: less biased by length than the mean (Gupta et al.,
    # ICLR 2024, "Language Model Cascades: Token-level uncertainty and beyond").
    "p10_logprob": Score(
        lambda j, _: percentile(_pooled(j, "logprobs"), 10), Unsure.LOW, empty=-1e3, needs="logprobs"
    ),
    "p25_logprob": Score(
        lambda j, _: percentile(_pooled(j, "logprobs"), 25), Unsure.LOW, empty=-1e3, needs="logprobs"
    ),
    "output_tokens": Score(lambda j, _: float(len(_pooled(j, "margins"))), Unsure.HIGH),
    "input_tokens": Score(lambda j, _: float(j.input_tokens), Unsure.HIGH, needs=None),
    "truncation_ratio": Score(lambda j, _: j.truncation_ratio, Unsure.HIGH, needs=None),
}

# Scores that need no emitted token: they keep their real value for a job that generated nothing.
_TOKENLESS = {"output_tokens", "input_tokens", "truncation_ratio"}


def aggregate(job: Generated, *, margin_cut: float) -> dict[str, float]:
    """Every score of a job's generation that its backend can give (an OpenAI-compatible server gives no
    entropies); a job that emitted no token is maximally unsure on token scores."""
    emitted = any(call.margins for call in job.calls)
    given = (
        {"margins", "entropies", "logprobs"}
        if not emitted
        else {
            stat for stat in ("margins", "entropies", "logprobs") if any(getattr(c, stat) for c in job.calls)
        }
    )
    return {
        name: float(score.fn(job, margin_cut)) if emitted or name in _TOKENLESS else score.empty
        for name, score in SCORES.items()
        if score.needs is None or score.needs in given
    }


def given_by_all(scores: Iterable[Mapping[str, float]]) -> list[str]:
    """The registry's scores present in every one of these jobs' scores (a server's small tier gives no entropy)."""
    jobs = list(scores)
    return [name for name in SCORES if all(name in job for job in jobs)]


def check_score(settings: Settings) -> None:
    """The gate's score is one the small model's backend can give (checked where the small and gate workers
    start: a score that can never be given would fail every job)."""
    if settings.gate_score not in SCORES:
        raise ValueError(
            f"unknown RECAP_GATE_SCORE={settings.gate_score!r}; choose one of {', '.join(SCORES)}"
        )
    kind = settings.backend_kind(Tier.SMALL)
    needs = SCORES[settings.gate_score].needs
    if needs and needs not in PROVIDES[kind]:
        usable = [n for n, score in SCORES.items() if score.needs is None or score.needs in PROVIDES[kind]]
        raise ValueError(
            f"RECAP_GATE_SCORE={settings.gate_score} needs per-token {needs}, which the small model's {kind} "
            f"backend cannot give; choose one of: {', '.join(usable)}"
        )


def risk(name: str, value: float) -> float:
    """The value on one axis where higher always means less sure: what ranks jobs for escalation."""
    return value if SCORES[name].unsure is Unsure.HIGH else -value
