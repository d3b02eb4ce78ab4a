"""Decoding rules every in-process engine applies the same way, so their margins mean the same thing.

The statistics the gate reads are taken from the distribution the decoder chose from: the logits after these
rules (and the engine's own forced/suppressed tokens), not the raw ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.model_kinds import GenerationOptions


def banned_ngram_tokens(generated: Sequence[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already in `generated` (no_repeat_ngram_size = n)."""
    if n <= 0 or len(generated) < n:
        return []
    prefix = tuple(generated[len(generated) - n + 1 :]) if n > 1 else ()
    return [
        generated[i + n - 1]
        for i in range(len(generated) - n + 1)
        if tuple(generated[i : i + n - 1]) == prefix
    ]


def process_numpy(logits: np.ndarray, generated: Sequence[int], options: GenerationOptions) -> np.ndarray:
    """A copy of one step's [V] logits with the answer's repetition penalty and n-gram ban applied."""
    out = np.array(logits, dtype=np.float32, copy=True)
    if options.repetition_penalty != 1.0 and generated:
        seen = np.fromiter(set(generated), dtype=np.int64)
        vals = out[seen]
        out[seen] = np.where(vals > 0, vals / options.repetition_penalty, vals * options.repetition_penalty)
    banned = banned_ngram_tokens(generated, options.no_repeat_ngram_size)
    if banned:
        out[banned] = -np.inf
    return out


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def stats_numpy(logits: np.ndarray, chosen: int) -> tuple[float, float, float]:
    """(margin, entropy in nats, log p(chosen)) of one step's processed [V] logits."""
    finite = logits[np.isfinite(logits)]
    shifted = finite - finite.max()
    logz = float(np.log(np.exp(shifted.astype(np.float64)).sum()))
    logp = shifted.astype(np.float64) - logz
    p = np.exp(logp)
    top2 = np.partition(p, -2)[-2:] if p.size >= 2 else np.array([0.0, p.max()])
    chosen_logp = float(logits[chosen] - finite.max() - logz) if np.isfinite(logits[chosen]) else -np.inf
    return float(top2[1] - top2[0]), float(-(p * logp).sum()), chosen_logp
