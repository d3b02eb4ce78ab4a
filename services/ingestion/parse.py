"""Transcript parsing: bytes as received -> normalized turns, or an InputError with a specific code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import InputError
from shared.schemas import Turn

SPEAKER_LINE = re.compile(r"^(?P<speaker>[^:\n]{1,80}?):\s+(?P<text>.*\S)\s*$")
# QMSum-style annotation tags ({disfmarker}, {vocalsound}, ...): noise to a summarizer.
ANNOTATION_TAG = re.compile(r"\{[a-z]+\}")
FORMATS = ("txt", "json")


@dataclass(frozen=True)
class ParsedTranscript:
    format: str
    turns: list[Turn]


def decode(raw: bytes, *, max_bytes: int) -> str:
    if len(raw) > max_bytes:
        raise InputError(
            "too_large",
            f"the transcript is {len(raw):,} bytes; the limit is {max_bytes:,} (RECAP_MAX_TRANSCRIPT_BYTES)",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            "not_utf8",
            f"the transcript is not UTF-8 text (invalid byte at offset {exc.start}); export it as UTF-8",
        ) from exc
    if "\x00" in text:
        raise InputError(
            "not_utf8", "the transcript contains NUL bytes: it looks like a binary file, not text"
        )
    if not text.strip():
        raise InputError("empty", "the transcript is empty or whitespace only")
    return text


def detect_format(text: str) -> str:
    return "json" if text.lstrip()[:1] in ("[", "{") else "txt"


def parse_text(text: str) -> list[Turn]:
    """`Speaker: text` lines; a line without a speaker continues the previous turn (or is speakerless prose)."""
    turns: list[Turn] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = SPEAKER_LINE.match(line)
        if match:
            turns.append(Turn(speaker=match["speaker"].strip(), text=match["text"].strip()))
        elif turns:
            turns[-1].text += " " + line.strip()
        else:
            turns.append(Turn(speaker=None, text=line.strip()))
    return turns


def _json_turn(i: int, item: Any) -> Turn:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise InputError("bad_json_shape", f'turn {i} must be an object with a string "text" field')
    speaker = item.get("speaker")
    if speaker is not None and not isinstance(speaker, str):
        raise InputError("bad_json_shape", f'turn {i}: "speaker" must be a string')
    return Turn(speaker=speaker, text=item["text"])


def parse_json(text: str) -> list[Turn]:
    """A list of turns, or an object holding one under "turns"; each turn {"speaker", "text"}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            "bad_json", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    items = data.get("turns") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError("bad_json_shape", 'expected a list of turns, or an object with a "turns" list')
    return [_json_turn(i, item) for i, item in enumerate(items)]


def clean(turns: list[Turn]) -> list[Turn]:
    """Drops annotation tags and collapses whitespace; turns left without words are dropped."""
    cleaned = []
    for turn in turns:
        words = ANNOTATION_TAG.sub(" ", turn.text).split()
        if words:
            cleaned.append(turn.model_copy(update={"text": " ".join(words)}))
    return cleaned


def parse(raw: bytes, *, max_bytes: int, max_turns: int, format: str | None = None) -> ParsedTranscript:
    """Validates and normalizes a transcript; raises InputError with a code a user can act on."""
    text = decode(raw, max_bytes=max_bytes)
    fmt = format or detect_format(text)
    if fmt not in FORMATS:
        raise InputError(
            "unsupported_format", f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}"
        )
    turns = clean(parse_json(text) if fmt == "json" else parse_text(text))
    if not turns:
        raise InputError("no_words", "the transcript has no words once annotation tags are removed")
    if len(turns) > max_turns:
        raise InputError(
            "too_many_turns", f"{len(turns):,} turns; the limit is {max_turns:,} (RECAP_MAX_TURNS)"
        )
    return ParsedTranscript(fmt, turns)
