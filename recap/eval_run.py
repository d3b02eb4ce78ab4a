"""`recap eval` end to end: both tiers over a meetings file (calls cached), ROUGE against one or two human
references, the cost-quality evaluation with bootstrap intervals, the buyer's figures and the calibration check,
written as one JSON file and its plots.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import fmean
from typing import Any

from inference.backends.load import load, spec_for
from inference.scores import given_by_all
from recap import cascade
from recap.bootstrap import Bootstrap, bootstrap, resample_indices
from recap.call_cache import CallCache, identity
from recap.evaluation import Report, Row, evaluate
from recap.figures import BUYER_RATES, at_rates, budget_rate, cross_fitted
from shared.config import get_settings
from shared.costs import Price
from shared.states import Tier

PRIMARY = "rougeL"
Progress = Callable[[Tier, int], None]  # (tier, words done) -> None


@dataclass(frozen=True)
class EvalOptions:
    data: Path
    limit: int | None
    domain: str | None
    half: str | None  # first | second: alternate meetings only
    cache: Path | None
    resamples: int
    seed: int
    budget: float | None  # USD per job, for the budget policy's rate
    second_reference: Path | None  # JSONL of {"id", "ami_abstract"}


@cache
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F1, stemming on (what QMSum's papers report)."""
    return {name: s.fmeasure for name, s in _scorer().score(reference, prediction).items()}


def _mean(tables: Sequence[dict[str, float]]) -> dict[str, float]:
    return {m: fmean([t[m] for t in tables]) for m in tables[0]} if tables else {}


def second_reference(
    path: Path, meetings: Sequence[cascade.Meeting], small: Sequence[str], large: Sequence[str]
) -> dict[str, Any]:
    """Both tiers against both human summaries, on the meetings that have both, and the two humans against each
    other: how far apart two people's summaries of the same meeting are (a ceiling for any model)."""
    abstracts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            abstracts[row["id"]] = row["ami_abstract"]
    both = [i for i, m in enumerate(meetings) if m.id in abstracts and m.reference]
    return {
        "path": str(path),
        "meetings": [meetings[i].id for i in both],
        "small": {
            "qmsum": _mean([rouge(small[i], meetings[i].reference or "") for i in both]),
            "ami": _mean([rouge(small[i], abstracts[meetings[i].id]) for i in both]),
        },
        "large": {
            "qmsum": _mean([rouge(large[i], meetings[i].reference or "") for i in both]),
            "ami": _mean([rouge(large[i], abstracts[meetings[i].id]) for i in both]),
        },
        # The QMSum summary scored as if it were a prediction of the AMI abstract.
        "human": _mean([rouge(meetings[i].reference or "", abstracts[meetings[i].id]) for i in both]),
    }


def _commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _model(tier: Tier) -> dict[str, Any]:
    settings = get_settings()
    t = settings.tier(tier)
    return identity(spec_for(settings, tier)) | {
        "window": t.window,
        "chunk_tokens": t.chunk_tokens,
        "overlap_tokens": t.overlap_tokens,
        "chunk_summary_tokens": t.chunk_summary_tokens,
        "final_tokens": {str(k): v for k, v in t.final_tokens.items()},
        "instructions": list(t.prompts.instructions()),
    }


def _price(tier: Tier) -> Price:
    """What the ledger charges this tier: its model's price, else its device's (loaded models are cached)."""
    settings = get_settings()
    model = load(spec_for(settings, tier))
    return settings.price_for(model.name, model.device)


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]  # what the JSON file holds
    report: Report
    intervals: Bootstrap
    calls: dict[str, CallCache]  # per tier, when cached: calls replayed and calls made


def run(
    options: EvalOptions, meetings: Sequence[cascade.Meeting], progress: Progress | None = None
) -> Outcome:
    settings = get_settings()

    def tier_progress(tier: Tier) -> Callable[[int], None] | None:
        return None if progress is None else lambda words: progress(tier, words)

    calls = {tier: CallCache(options.cache) for tier in ("small", "large")} if options.cache else {}
    small = cascade.run_tier(
        meetings, Tier.SMALL, cache=calls.get("small"), progress=tier_progress(Tier.SMALL)
    )
    large = cascade.run_tier(
        meetings, Tier.LARGE, cache=calls.get("large"), progress=tier_progress(Tier.LARGE)
    )
    rows = [
        Row(
            m.id,
            s.scores,
            rouge(s.text, m.reference or ""),
            rouge(lg.text, m.reference or ""),
            s.cost_usd,
            lg.cost_usd,
        )
        for m, s, lg in zip(meetings, small, large, strict=True)
    ]
    scores = given_by_all(r.scores for r in rows)
    report = evaluate(rows, scores=scores, primary=PRIMARY)
    draws = resample_indices(len(rows), options.resamples, options.seed)
    intervals = bootstrap(rows, report, scores=scores, draws=draws, seed=options.seed)
    target = settings.gate_target_rate
    buyer: dict[str, Any] = {}
    calibration = {}
    for score in scores:
        pooled, folds = cross_fitted(rows, score, target, PRIMARY)
        buyer[score] = {
            "calibrated": pooled.model_dump(mode="json"),
            "rates": [o.model_dump(mode="json") for o in at_rates(rows, score, PRIMARY, BUYER_RATES)],
        }
        calibration[score] = folds
    prices = {
        "small": _price(Tier.SMALL).model_dump(mode="json"),
        "large": _price(Tier.LARGE).model_dump(mode="json"),
    }
    result: dict[str, Any] = {
        "commit": _commit(),
        "data": {
            "path": str(options.data),
            "sha256": hashlib.sha256(options.data.read_bytes()).hexdigest(),
            "meetings": len(meetings),
            "limit": options.limit,
            "domain": options.domain,
            "half": options.half,
            "ids": [m.id for m in meetings],
        },
        "models": {"small": _model(Tier.SMALL), "large": _model(Tier.LARGE)},
        "summary_length": settings.default_summary_length.value,
        "prices_usd": prices,
        "report": report.model_dump(mode="json"),
        "bootstrap": intervals.model_dump(mode="json"),
        "gate_score": settings.gate_score,
        "target_rate": target,
        "buyer": buyer,
        "calibration_check": {
            s: [f.model_dump(mode="json") for f in folds] for s, folds in calibration.items()
        },
        "budget": budget_rate(rows, options.budget).model_dump(mode="json")
        if options.budget is not None
        else None,
        "second_reference": (
            second_reference(
                options.second_reference, meetings, [s.text for s in small], [lg.text for lg in large]
            )
            if options.second_reference
            else None
        ),
        "jobs": [
            {
                "id": r.job,
                "scores": r.scores,
                "small": r.small,
                "large": r.large,
                "cost_small_usd": r.cost_small,
                "cost_large_usd": r.cost_large,
                "small_text": s.text,
                "large_text": lg.text,
            }
            for r, s, lg in zip(rows, small, large, strict=True)
        ],
    }
    return Outcome(result, report, intervals, calls)
