"""Named, configurable cleaning steps over parsed turns, then the normalization every transcript gets."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from shared.schemas import Turn

# QMSum-style annotation tags ({disfmarker}, {vocalsound}, ...): transcriber notes, noise to a summarizer.
ANNOTATION_TAG = re.compile(r"\{[a-z]+\}")
# Bracketed sound notes that caption services (Otter, Rev, Zoom) write into the text.
NOISE_NOTE = re.compile(
    r"[\[(](?:inaudible|crosstalk|laughter|laughs|laughing|music|applause|silence|noise|coughs?|pause)"
    r"[^\])]{0,40}[\])]",
    re.IGNORECASE,
)

# Step name -> text transform. RECAP_CLEANING lists the steps to run, in order.
CLEANERS: dict[str, Callable[[str], str]] = {
    "annotation_tags": lambda text: ANNOTATION_TAG.sub(" ", text),
    "noise_notes": lambda text: NOISE_NOTE.sub(" ", text),
}


def has_words(text: str) -> bool:
    """Anything but whitespace and punctuation counts: letters in any script, digits, emoji."""
    return any(not ch.isspace() and not unicodedata.category(ch).startswith("P") for ch in text)


def clean(turns: Iterable[Turn], steps: Iterable[str]) -> list[Turn]:
    """Runs the named steps, collapses whitespace, drops turns left without words."""
    transforms = [CLEANERS[name] for name in steps]
    cleaned = []
    for turn in turns:
        text = turn.text
        for transform in transforms:
            text = transform(text)
        text = " ".join(text.split())
        if has_words(text):
            speaker = " ".join(turn.speaker.split()) if turn.speaker else None
            # model_construct: the fields are already valid, and a validated copy per cue doubled parse time.
            cleaned.append(
                Turn.model_construct(speaker=speaker or None, text=text, start=turn.start, end=turn.end)
            )
    return cleaned


def merge_speakers(turns: Iterable[Turn]) -> list[Turn]:
    """Joins consecutive cues of one named speaker into a turn spanning their times.

    Cues without a speaker stay apart: nothing says they are the same person.
    """
    merged: list[Turn] = []
    for turn in turns:
        last = merged[-1] if merged else None
        if last is not None and turn.speaker is not None and turn.speaker == last.speaker:
            last.text = f"{last.text} {turn.text}"
            last.end = turn.end if turn.end is not None else last.end
        else:
            merged.append(
                Turn.model_construct(speaker=turn.speaker, text=turn.text, start=turn.start, end=turn.end)
            )
    return merged
