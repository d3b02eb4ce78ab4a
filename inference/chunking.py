"""Cutting a transcript into chunks that fit a model's window, on turn boundaries, by the model's own tokenizer.

Pure Python over a `Tokenizer` protocol, so it is tested without a model. A turn longer than a chunk is cut at
sentence ends; a sentence longer than a chunk (a 30k-word line with no full stop) is cut by tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f\u061f\u06d4])\s+")
# Joining two pieces (a newline between turns, a space between sentences) may cost one token more than the
# pieces counted apart; counting it keeps every chunk within its budget.
JOIN_TOKENS = 1
RECUT_TOKENS = 4
BLOCK_TURNS = 256  # turns tokenized at a time by plan_chunks


class Tokenizer(Protocol):
    def count(self, texts: Sequence[str]) -> list[int]: ...

    def split(self, text: str, budget: int) -> list[str]: ...


@dataclass(frozen=True)
class Unit:
    """A turn, or a piece of one, that never straddles a chunk boundary."""

    text: str
    tokens: int


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: int  # an upper bound of the chunk's token count
    units: range  # the units it holds, overlap included


@dataclass(frozen=True)
class ChunkPlan:
    chunks: list[Chunk]
    # Of the whole document; past what `max_chunks` can reach, estimated from its length in characters.
    total_tokens: int
    unseen_tokens: int  # in no chunk: only when `max_chunks` cut the plan short

    @property
    def truncation_ratio(self) -> float:
        return 0.0 if self.total_tokens == 0 else self.unseen_tokens / self.total_tokens


def _pieces(label: str, text: str, budget: int, tokenizer: Tokenizer) -> list[Unit]:
    """A turn over the budget, as pieces that each fit, cut at sentence ends where it can be."""
    sentences = [s for s in SENTENCE_END.split(text) if s]
    counts = tokenizer.count(sentences)
    label_tokens = tokenizer.count([label])[0] + JOIN_TOKENS if label else 0
    if label_tokens * 2 > budget:  # an absurdly long speaker name: repeating it would crowd out the text
        label, label_tokens = "", 0
    room = budget - label_tokens
    units: list[Unit] = []
    current: list[str] = []
    used = 0

    def flush() -> None:
        nonlocal current, used
        if current:
            units.append(Unit(label + " ".join(current), label_tokens + used))
            current, used = [], 0

    for sentence, n in zip(sentences, counts, strict=True):
        if n > room:  # no sentence end to cut at: cut by tokens
            flush()
            # Decoding a token slice and encoding it again can cost a token or two at the cut: leave room.
            for part in tokenizer.split(sentence, room - RECUT_TOKENS):
                units.append(Unit(label + part, budget))
            continue
        if used + n + JOIN_TOKENS > room:
            flush()
        current.append(sentence)
        used += n + JOIN_TOKENS
    flush()
    return units


def units_of(turns: Sequence[tuple[str | None, str]], *, budget: int, tokenizer: Tokenizer) -> list[Unit]:
    """One unit per `(speaker, text)` turn as `Speaker: text`, long turns cut into pieces that fit."""
    labels = [f"{speaker}: " if speaker else "" for speaker, _ in turns]
    lines = [label + text for label, (_, text) in zip(labels, turns, strict=True)]
    counts = tokenizer.count(lines)
    units: list[Unit] = []
    for label, (_, text), line, n in zip(labels, turns, lines, counts, strict=True):
        if n + JOIN_TOKENS <= budget:
            units.append(Unit(line, n + JOIN_TOKENS))
        else:
            units.extend(_pieces(label, text, budget, tokenizer))
    return units


def plan_chunks(
    turns: Sequence[tuple[str | None, str]],
    *,
    budget: int,
    overlap: int,
    max_chunks: int,
    tokenizer: Tokenizer,
) -> ChunkPlan:
    """`pack(units_of(turns))`, tokenizing only as far as `max_chunks` chunks can reach.

    A transcript far past the cap (megabytes) would otherwise cost seconds of tokenizing text no chunk holds; the
    chunks are the same either way, and the unread rest's tokens are estimated at the read part's tokens per char.
    """
    reach = budget * max_chunks  # the chunks hold at most this many distinct tokens
    units: list[Unit] = []
    read = tokens = chars = 0
    while read < len(turns) and tokens <= reach:
        block = turns[read : read + BLOCK_TURNS]
        found = units_of(block, budget=budget, tokenizer=tokenizer)
        units.extend(found)
        tokens += sum(u.tokens for u in found)
        chars += _chars(block)
        read += len(block)
    plan = pack(units, budget=budget, overlap=overlap, max_chunks=max_chunks)
    if read == len(turns):
        return plan
    rest = round(_chars(turns[read:]) * tokens / max(chars, 1))
    return ChunkPlan(plan.chunks, plan.total_tokens + rest, plan.unseen_tokens + rest)


def _chars(turns: Sequence[tuple[str | None, str]]) -> int:
    return sum(len(speaker or "") + len(text) for speaker, text in turns)


def pack(units: Sequence[Unit], *, budget: int, overlap: int, max_chunks: int) -> ChunkPlan:
    """Greedy packing of whole units into chunks of at most `budget` tokens.

    Each chunk after the first repeats the previous chunk's last units up to `overlap` tokens, so context that
    spans a boundary is seen whole at least once.
    """
    total = sum(u.tokens for u in units)
    chunks: list[Chunk] = []
    start = 0
    while start < len(units) and len(chunks) < max_chunks:
        end, used = start, 0
        while end < len(units) and used + units[end].tokens <= budget:
            used += units[end].tokens
            end += 1
        if end == start:
            raise ValueError(f"unit {start} ({units[start].tokens} tokens) exceeds the chunk budget {budget}")
        chunks.append(Chunk("\n".join(u.text for u in units[start:end]), used, range(start, end)))
        if end == len(units):
            break
        back, kept = end, 0
        while back > start + 1 and kept + units[back - 1].tokens <= overlap:
            back -= 1
            kept += units[back].tokens
        # Overlap plus the next unit must fit, or the next chunk could not advance.
        while back < end and kept + units[end].tokens > budget:
            kept -= units[back].tokens
            back += 1
        start = back
    seen_until = chunks[-1].units.stop if chunks else 0
    unseen = sum(u.tokens for u in units[seen_until:])
    return ChunkPlan(chunks, total, unseen)
