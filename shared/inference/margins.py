"""Per-token margins, top-1 minus top-2 probability, from a generation's own logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def generated_mask(tokens: torch.Tensor, eos_token_ids: Sequence[int]) -> torch.Tensor:
    """[B, T] bool: steps up to and including each row's first EOS (later steps are batch padding)."""
    is_eos = torch.isin(tokens, torch.tensor(list(eos_token_ids), dtype=tokens.dtype))
    before = is_eos.int().cumsum(dim=1) - is_eos.int()
    return before == 0


def token_margins(
    step_logits: Sequence[torch.Tensor], tokens: torch.Tensor, eos_token_ids: Sequence[int]
) -> list[list[float]]:
    """Margins of each row's generated tokens; `step_logits` are the T raw [B, V] logits, `tokens` the [B, T] ids.

    Raw logits, not the processed scores: min-length and similar processors rewrite the distribution, and we
    want the model's own uncertainty. One step at a time keeps memory at [B, V], not [B, T, V].
    """
    margins = torch.empty(tokens.shape, dtype=torch.float32)
    for t, logits in enumerate(step_logits):
        top2 = logits.float().softmax(dim=-1).topk(2, dim=-1).values
        margins[:, t] = (top2[:, 0] - top2[:, 1]).cpu()
    mask = generated_mask(tokens.cpu(), eos_token_ids)
    return [row[keep].tolist() for row, keep in zip(margins, mask, strict=True)]
