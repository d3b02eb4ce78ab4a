"""A long job in slices: new model calls for it only until its visit's seconds are spent (at least one call, so
every visit makes progress), every finished call kept in the job's memo, so the next visit replays them (the same
prompts come back: chunking and greedy decoding are deterministic) and goes on from there. Between visits the job
waits at the back of its stage's queue, behind other tenants' jobs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from inference.backends.base import Generation
from inference.stats import TokenStats


class Memo(Protocol):
    """One job's finished calls in one stage, by key (the stage keeps them in its database). `deferrable`: it has
    calls from earlier visits and its last visit was not a deferral (see Summarizer.summarize)."""

    deferrable: bool

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, calls: list[tuple[str, dict[str, Any]]]) -> None: ...


def call_key(
    model: str, prompt: str, *, max_new_tokens: int, min_new_tokens: int | None, scores: bool
) -> str:
    call = [model, prompt, max_new_tokens, min_new_tokens, scores]
    return hashlib.sha256(json.dumps(call).encode()).hexdigest()


@dataclass
class Slice:
    """A document's memo and its visit's model seconds: once they are spent and it made a call, it is parked."""

    memo: Memo
    seconds: float
    made: int = 0
    ends: float = float("inf")  # start() sets it
    last_call_s: float = 0.0  # how long its last generate() took: the next one would take about as long

    def start(self) -> None:
        self.ends = time.monotonic() + self.seconds

    def over(self) -> bool:
        """Parked before a call that would end past its seconds (a visit makes at least one)."""
        return self.made > 0 and time.monotonic() + self.last_call_s > self.ends

    def replay(self, key: str) -> Generation | None:
        row = self.memo.get(key)
        if row is None:
            return None
        return Generation(**(row | {"stats": TokenStats(**row["stats"])}))

    def keep(self, calls: list[tuple[str, Generation]], took_s: float) -> None:
        self.made += len(calls)
        self.last_call_s = took_s
        self.memo.put([(key, asdict(gen)) for key, gen in calls])
