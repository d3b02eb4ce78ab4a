"""How a transcript is shown to a summarizer: named prompt styles, each a full set of instructions. Pure text,
shared by both model tiers; RECAP_PROMPTS picks a style per model (shared/config.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class SummaryLength(StrEnum):
    """The three summary lengths a job may ask for."""

    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


@dataclass(frozen=True)
class Prompts:
    """One style's instructions: a transcript that fits (final), a chunk of a long one, a merge of chunk
    summaries, and the last merge (per summary length); and where the instruction goes."""

    final: Mapping[SummaryLength, str]
    chunk: str
    merge: str
    final_merge: Mapping[SummaryLength, str]
    # After the text instead of before it: a small decoder reads the instruction best right before it answers,
    # not 2,000 tokens of transcript earlier (where it tends to go on with the transcript instead).
    instruction_last: bool = False

    def instructions(self) -> tuple[str, ...]:
        return (*self.final.values(), self.chunk, self.merge, *self.final_merge.values())


# The instructions of the Tiny Titans FLAN-T5 recipe (the team folder's research digest): the default style.
PLAIN = Prompts(
    final={
        SummaryLength.SHORT: "Write a short summary of the following meeting transcript.",
        SummaryLength.MEDIUM: "Summarize the following meeting transcript.",
        SummaryLength.LONG: "Write a long, detailed summary of the following meeting transcript.",
    },
    chunk="Summarize this part of a meeting transcript.",
    merge="Combine these summaries of consecutive parts of one meeting into one summary.",
    final_merge={
        SummaryLength.SHORT: "Write a short summary of the meeting described by these partial summaries.",
        SummaryLength.MEDIUM: "Summarize the meeting described by these partial summaries.",
        SummaryLength.LONG: "Write a long, detailed summary of the meeting described by these partial summaries.",
    },
)

_WHAT = "what the meeting was about, what was discussed and what was decided"
_PARTS = "These are summaries of consecutive parts of one meeting."

# For small chat models: the shape of a human meeting summary spelled out (third person, topics, decisions), so
# a model that does not know what a meeting summary is has less to guess.
TOPICS = Prompts(
    final={
        SummaryLength.SHORT: f"Summarize this meeting transcript in two sentences: {_WHAT}.",
        SummaryLength.MEDIUM: f"Summarize this meeting transcript in one paragraph: {_WHAT}.",
        SummaryLength.LONG: f"Summarize this meeting transcript in detail: {_WHAT}.",
    },
    chunk="Summarize this part of a meeting transcript in a few sentences: the topics discussed and any decisions.",
    merge=f"{_PARTS} Combine them into one summary that keeps the main topics and decisions.",
    final_merge={
        SummaryLength.SHORT: f"{_PARTS} Summarize the whole meeting in two sentences: {_WHAT}.",
        SummaryLength.MEDIUM: f"{_PARTS} Summarize the whole meeting in one paragraph: {_WHAT}.",
        SummaryLength.LONG: f"{_PARTS} Summarize the whole meeting in detail: {_WHAT}.",
    },
    instruction_last=True,
)

PROMPTS: dict[str, Prompts] = {"plain": PLAIN, "topics": TOPICS}
