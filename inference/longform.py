"""Summaries of meetings of any length: chunk, summarize the chunks, merge the summaries until one is left.

Several documents advance together, one step at a time, so every generate() call is a full batch of prompts
(chunks of one long meeting, or of many jobs), sorted by length to limit padding.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inference.backends.base import Backend, Generation, share_seconds
from inference.chunking import ChunkPlan, pack, plan_chunks, units_of
from inference.slices import Slice, call_key
from inference.stats import TokenStats
from shared.errors import JobError
from shared.prompts import SummaryLength
from shared.schemas import Usage
from shared.tiers import TierSettings

Turns = Sequence[tuple[str | None, str]]
PLANS_KEPT = 4


@dataclass
class LongSummary:
    text: str
    chunks: int  # the transcript's chunks (1: it fit the window whole)
    levels: int  # generation rounds: 1 for a transcript that fit, 2+ with merges
    calls: int  # generate() rows spent on this document
    input_tokens: int
    output_tokens: int
    transcript_tokens: int  # the whole transcript, in this model's tokens
    truncation_ratio: float  # share of transcript tokens no model call saw
    stats: list[TokenStats]  # per call, when scored
    seconds: float  # this document's share of the model time
    batch_size: int  # the largest generate() batch it was part of
    # Sliced: not finished in this visit (its calls are in its memo; text is empty). Tokens and seconds are what
    # this visit spent: calls replayed from the memo were billed by the visit that made them.
    parked: bool = False

    def usage(self, model: Backend) -> Usage:
        return Usage(
            model=model.name,
            device=model.device,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            seconds=self.seconds,
            batch_size=self.batch_size,
        )


def summary_fields(done: LongSummary) -> dict[str, Any]:
    """What the summary row keeps of how it was made."""
    return {
        "text": done.text,
        "chunks": done.chunks,
        "levels": done.levels,
        "calls": done.calls,
        "truncation_ratio": done.truncation_ratio,
    }


@dataclass
class _Doc:
    """One document's progress: the prompts of its current step and what it has spent so far."""

    length: SummaryLength
    prompts: list[str]
    max_new_tokens: int
    final: bool
    plan: ChunkPlan
    levels: int = 1
    gens: list[Generation] = field(default_factory=list)
    seconds: float = 0.0
    batch_size: int = 1
    slice: Slice | None = None
    parked: bool = False
    spent: list[Generation] = field(default_factory=list)  # made in this visit (not replayed)


class Summarizer:
    """One tier's summarizer: a loaded model and that tier's chunking and length settings."""

    def __init__(self, model: Backend, tier: TierSettings) -> None:
        self.model = model
        self.tier = tier
        # Room for the longest instruction (with any chat template) and the end-of-sequence token.
        overhead = max(model.count([self._prompt(i, "") for i in tier.prompts.instructions()])) + 2
        self.budget = min(tier.chunk_tokens or tier.window, tier.window - overhead)
        # The chunk plans of the last few long transcripts: a job in slices comes back to this process for each
        # visit, and tokenizing a 5 MB transcript again would cost seconds every time.
        self._plans: OrderedDict[str, ChunkPlan] = OrderedDict()

    def _prompt(self, instruction: str, text: str) -> str:
        return self.model.prompt(instruction, text, instruction_last=self.tier.prompts.instruction_last)

    def _plan(self, turns: Turns) -> ChunkPlan:
        key = hashlib.sha256(json.dumps(list(turns)).encode()).hexdigest()
        plan = self._plans.pop(key, None)
        if plan is None:
            plan = plan_chunks(
                turns,
                budget=self.budget,
                overlap=self.tier.overlap_tokens,
                max_chunks=self.tier.max_chunks,
                tokenizer=self.model,
            )
        if len(plan.chunks) > 1:  # one chunk: nothing worth keeping
            self._plans[key] = plan
            while len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)
        return plan

    def _start(self, turns: Turns, length: SummaryLength) -> _Doc:
        plan = self._plan(turns)
        if len(plan.chunks) == 1:
            prompts, final = [self._prompt(self.tier.prompts.final[length], plan.chunks[0].text)], True
        else:
            prompts, final = [self._prompt(self.tier.prompts.chunk, c.text) for c in plan.chunks], False
        tokens = self.tier.final_tokens[length] if final else self.tier.chunk_summary_tokens
        return _Doc(length, prompts, tokens, final, plan)

    def _advance(self, doc: _Doc, summaries: list[str]) -> None:
        """The next step after a round of chunk or merge summaries: a final merge if they fit, else merge more."""
        units = units_of([(None, s) for s in summaries], budget=self.budget, tokenizer=self.model)
        plan = pack(units, budget=self.budget, overlap=0, max_chunks=len(units))
        doc.levels += 1
        if len(plan.chunks) == 1:
            doc.prompts = [self._prompt(self.tier.prompts.final_merge[doc.length], plan.chunks[0].text)]
            doc.max_new_tokens, doc.final = self.tier.final_tokens[doc.length], True
            return
        if len(plan.chunks) >= len(summaries):
            raise JobError("merge_stalled", f"{len(summaries)} summaries do not merge into fewer chunks")
        doc.prompts = [self._prompt(self.tier.prompts.merge, c.text) for c in plan.chunks]
        doc.max_new_tokens = self.tier.chunk_summary_tokens

    def _replayed(
        self, d: int, doc: _Doc, scores: bool, out: list[Generation | None]
    ) -> list[tuple[int, int, str]]:
        """Fills `out` from the document's memo; the rows still to generate."""
        rows = []
        for i, prompt in enumerate(doc.prompts):
            if doc.slice is not None:
                out[i] = doc.slice.replay(self._key(prompt, doc.max_new_tokens, scores))
            if out[i] is None:
                rows.append((d, i, prompt))
        return rows

    @staticmethod
    def _unspent(docs: list[_Doc], batch: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """The rows of documents whose slice still has seconds; the others are parked (their calls are kept)."""
        for d, _, _ in batch:
            piece = docs[d].slice
            docs[d].parked = docs[d].parked or (piece is not None and piece.over())
        return [row for row in batch if not docs[row[0]].parked]

    def _key(self, prompt: str, max_new: int, scores: bool) -> str:
        min_new = self.tier.min_new_tokens
        return call_key(
            self.model.name, prompt, max_new_tokens=max_new, min_new_tokens=min_new, scores=scores
        )

    def _generate(self, docs: list[_Doc], *, scores: bool) -> list[list[Generation]]:
        """Every pending prompt of every document, in batches of like length; results per document."""
        results: list[list[Generation | None]] = [[None] * len(doc.prompts) for doc in docs]
        by_need: dict[int, list[tuple[int, int, str]]] = {}
        for d, doc in enumerate(docs):
            for row in self._replayed(d, doc, scores, results[d]):
                by_need.setdefault(doc.max_new_tokens, []).append(row)
        for max_new, group in by_need.items():
            group.sort(key=lambda row: len(row[2]))
            for at in range(0, len(group), self.tier.batch_size):
                batch = self._unspent(docs, group[at : at + self.tier.batch_size])
                if not batch:
                    continue
                started = time.perf_counter()
                gens = self.model.generate(
                    [p for _, _, p in batch],
                    max_new_tokens=max_new,
                    min_new_tokens=self.tier.min_new_tokens,
                    scores=scores,
                )
                took = time.perf_counter() - started
                shares = share_seconds(gens, took)
                kept: dict[int, list[tuple[str, Generation]]] = {}
                for (d, i, prompt), gen, seconds in zip(batch, gens, shares, strict=True):
                    results[d][i] = gen
                    docs[d].seconds += seconds
                    docs[d].batch_size = max(docs[d].batch_size, len(batch))
                    docs[d].spent.append(gen)
                    kept.setdefault(d, []).append((self._key(prompt, max_new, scores), gen))
                for d, calls in kept.items():  # kept at once: a visit cut off keeps the calls it finished
                    if (piece := docs[d].slice) is not None:
                        piece.keep(calls, took)
        return [[g for g in doc_results if g is not None] for doc_results in results]

    def summarize(
        self,
        documents: Sequence[tuple[Turns, SummaryLength]],
        *,
        scores: bool = False,
        slices: Sequence[Slice | None] | None = None,
    ) -> list[LongSummary]:
        """Summaries of `(turns, length)` documents, each read whole however long it is (up to max_chunks). With
        `slices`, a document past its slice's seconds comes back `parked` (its calls kept in its memo). A resumed
        document batched with new ones waits for them (parked at once, no call), so that they are not held for
        its slice; never twice in a row."""
        docs = [self._start(turns, length) for turns, length in documents]
        pieces = list(slices or [None] * len(docs))
        waits = not all(piece is not None and piece.memo.deferrable for piece in pieces)
        for doc, piece in zip(docs, pieces, strict=True):
            doc.slice = piece
            if piece is not None:
                piece.start()
                doc.parked = waits and piece.memo.deferrable
        final_gens: list[Generation | None] = [None] * len(docs)
        while pending := [d for d, doc in enumerate(docs) if final_gens[d] is None and not doc.parked]:
            outputs = self._generate([docs[d] for d in pending], scores=scores)
            for d, gens in zip(pending, outputs, strict=True):
                doc = docs[d]
                if doc.parked:
                    continue
                doc.gens.extend(gens)
                if doc.final:
                    final_gens[d] = gens[0]
                else:
                    self._advance(doc, [g.text for g in gens])
        return [self._summary(doc, final, scores) for doc, final in zip(docs, final_gens, strict=True)]

    def _summary(self, doc: _Doc, final: Generation | None, scores: bool) -> LongSummary:
        return LongSummary(
            text=final.text if final is not None else "",
            chunks=len(doc.plan.chunks),
            levels=doc.levels,
            calls=len(doc.gens),
            input_tokens=sum(g.input_tokens for g in doc.spent),
            output_tokens=sum(g.output_tokens for g in doc.spent),
            transcript_tokens=doc.plan.total_tokens,
            truncation_ratio=doc.plan.truncation_ratio,
            stats=[g.stats for g in doc.gens] if scores else [],
            seconds=doc.seconds,
            batch_size=doc.batch_size,
            parked=doc.parked,
        )
