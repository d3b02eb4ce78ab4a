"""How a transcript is shown to a summarizer. Pure text, shared by both model tiers."""

from __future__ import annotations

from enum import StrEnum


class SummaryLength(StrEnum):
    """The three instructions one fine-tuned FLAN-T5 follows (RESEARCH.md)."""

    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


FINAL: dict[SummaryLength, str] = {
    SummaryLength.SHORT: "Write a short summary of the following meeting transcript.",
    SummaryLength.MEDIUM: "Summarize the following meeting transcript.",
    SummaryLength.LONG: "Write a long, detailed summary of the following meeting transcript.",
}
CHUNK = "Summarize this part of a meeting transcript."
MERGE = "Combine these summaries of consecutive parts of one meeting into one summary."
FINAL_MERGE: dict[SummaryLength, str] = {
    SummaryLength.SHORT: "Write a short summary of the meeting described by these partial summaries.",
    SummaryLength.MEDIUM: "Summarize the meeting described by these partial summaries.",
    SummaryLength.LONG: "Write a long, detailed summary of the meeting described by these partial summaries.",
}
ALL_INSTRUCTIONS = (*FINAL.values(), CHUNK, MERGE, *FINAL_MERGE.values())
