"""The one interface every model backend offers the summarizer. Pure Python: no engine imported here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from inference.stats import TokenStats
from shared.model_kinds import BackendKind


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    stats: TokenStats = field(default_factory=TokenStats)  # filled when generated with scores
    # This row's share of model time; set by a backend that knows it (a replayed cached call), else None.
    seconds: float | None = None


def message(instruction: str, body: str, *, instruction_last: bool = False) -> str:
    """The user's message: the instruction and the text, in the order the prompt style asks for."""
    return f"{body}\n\n{instruction}" if instruction_last else f"{instruction}\n\n{body}"


def share_seconds(gens: Sequence[Generation], elapsed: float) -> list[float]:
    """A batched call's time, shared by its rows in proportion to their input tokens (rows that know their
    own time keep it)."""
    timed = [g for g in gens if g.seconds is None]
    total_in = sum(g.input_tokens for g in timed) or 1
    return [elapsed * g.input_tokens / total_in if g.seconds is None else g.seconds for g in gens]


class Backend(Protocol):
    """A loaded model: counts and cuts text in its own tokens, builds its prompts, generates a batch."""

    name: str  # the model as configured (what the ledger and prices name)
    device: str  # cpu, cuda, cuda:N, or remote (a server's)
    kind: BackendKind

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def split(self, text: str, budget: int) -> list[str]: ...

    def prompt(self, instruction: str, body: str, *, instruction_last: bool = False) -> str: ...

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        scores: bool = False,
    ) -> list[Generation]: ...
