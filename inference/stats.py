"""What a generation says about its own certainty, token by token (pure Python: the gate's scores read it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenStats:
    """One generate() call's emitted tokens: top-1 minus top-2 probability, entropy (nats), log p(chosen)."""

    margins: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
