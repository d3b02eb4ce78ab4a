"""How a transcript is shown to a summarizer. Pure text, shared by both model tiers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

INSTRUCTION = "Summarize the following meeting transcript."


def render_transcript(turns: Iterable[dict[str, Any]]) -> str:
    """One `Speaker: text` line per turn (speakerless turns as plain lines)."""
    return "\n".join(f"{t['speaker']}: {t['text']}" if t.get("speaker") else t["text"] for t in turns)
