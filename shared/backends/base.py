"""The one interface every model backend offers the summarizer. Pure Python: no engine imported here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.backends.kinds import BackendKind
from shared.scores import TokenStats


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    stats: TokenStats = field(default_factory=TokenStats)  # filled when generated with scores


class Backend(Protocol):
    """A loaded model: counts and cuts text in its own tokens, builds its prompts, generates a batch."""

    name: str  # the model as configured (what the ledger and prices name)
    device: str  # cpu, cuda, cuda:N, or remote (a server's)
    kind: BackendKind

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def split(self, text: str, budget: int) -> list[str]: ...

    def prompt(self, instruction: str, body: str) -> str: ...

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        scores: bool = False,
    ) -> list[Generation]: ...
