"""Per-token uncertainty of a generation from its own logits: margin, entropy and log-probability of the choice."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inference.stats import TokenStats


def generated_mask(tokens: torch.Tensor, eos_token_ids: Sequence[int]) -> torch.Tensor:
    """[B, T] bool: steps up to and including each row's first EOS (later steps are batch padding)."""
    is_eos = torch.isin(tokens, torch.tensor(list(eos_token_ids), dtype=tokens.dtype))
    before = is_eos.int().cumsum(dim=1) - is_eos.int()
    return before == 0


def token_stats(
    step_logits: Sequence[torch.Tensor], tokens: torch.Tensor, eos_token_ids: Sequence[int]
) -> list[TokenStats]:
    """Statistics of each row's generated tokens; `step_logits` are the T [B, V] scores, `tokens` the [B, T] ids.

    The scores given are the processed ones (after repetition penalty, n-gram bans, min-length, suppressed
    tokens): the distribution greedy decoding took its argmax of, so the emitted token is always its top-1, as in
    every backend (inference/backends/processing.py). One step at a time keeps memory at [B, V], not [B, T, V].
    """
    shape = tokens.shape
    margins, entropies, logprobs = torch.empty(shape), torch.empty(shape), torch.empty(shape)
    for t, logits in enumerate(step_logits):
        logp = logits.float().log_softmax(dim=-1)
        p = logp.exp()
        top2 = p.topk(2, dim=-1).values
        margins[:, t] = (top2[:, 0] - top2[:, 1]).cpu()
        entropies[:, t] = (-(p * logp).nan_to_num().sum(dim=-1)).cpu()
        logprobs[:, t] = logp.gather(1, tokens[:, t : t + 1].to(logp.device)).squeeze(1).cpu()
    mask = generated_mask(tokens.cpu(), eos_token_ids)
    return [
        TokenStats(margins=m[keep].tolist(), entropies=e[keep].tolist(), logprobs=lp[keep].tolist())
        for m, e, lp, keep in zip(margins, entropies, logprobs, mask, strict=True)
    ]
