"""One reader per transcript format: text -> raw turns (speaker, text, times), before cleaning and merging.

WebVTT and SRT are read by webvtt-py and srt; plain text and JSON shapes are simple enough to read here.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable
from typing import Any

import srt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from shared.errors import InputError
from shared.schemas import Turn

# `Speaker: text` at the start of a line or cue (Zoom VTT, SRT, plain text). A label is at most a few words, so
# a sentence that merely contains a colon ("we agreed on two things: ...") is not taken for a speaker.
SPEAKER_PREFIX = re.compile(r"^(?P<speaker>[^\s:<>\[\]][^:<>\n]{0,63}?)\s*:\s+(?P<text>\S.*)$", re.DOTALL)
MAX_LABEL_WORDS = 6
# A header line followed by the turn's text: Otter (`Jane Doe  0:03`) and Zoom txt (`[Jane Doe] 00:01:02`).
TXT_HEADER = re.compile(
    r"^(?:\[(?P<bracketed>[^\]\n]{1,64})\]\s+|(?P<plain>\S[^\n]{0,63}?)\s{2,})"
    r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?)\s*$"
)
VOICE_TAG = re.compile(r"^\s*<v(?:\.[^\s>]+)?\s+(?P<speaker>[^>]+)>")
MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-ish tags and ASS overrides ({\an8}) in subtitle text
VTT_TIMING = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3}\s+-->\s+(?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3}")
SRT_TIMING = re.compile(r"^\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->")
SRT_FULL_TIMING = re.compile(
    r"^\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}(\s|$)"
)
JSON_LISTS = ("segments", "utterances", "turns")
MAX_SECONDS = 7 * 24 * 3600  # a timestamp past a week is no meeting's: refused, not carried into arithmetic


def _looks_like_label(label: str) -> bool:
    """Names and roles ("Project Manager", "PhD A", "Dr. van der Berg", "محمد"), not a clause ("we agreed")."""
    words = label.split()
    lowercase = sum(1 for w in words if w[0].islower())
    return len(words) <= MAX_LABEL_WORDS and (len(words) == 1 or lowercase * 2 <= len(words))


def split_speaker(text: str) -> tuple[str | None, str]:
    match = SPEAKER_PREFIX.match(text.strip())
    if match and _looks_like_label(match["speaker"]):
        return match["speaker"].strip(), match["text"]
    return None, text


def _clock(value: str) -> float:
    seconds = 0.0
    for part in value.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def _check_timings(text: str, timing: re.Pattern[str], code: str, want: str) -> None:
    """Every `-->` line must be a cue timing: the parsers skip (webvtt-py) or swallow (srt) a bad one silently."""
    for number, line in enumerate(text.splitlines(), 1):
        if "-->" in line and not timing.match(line):
            raise InputError(code, f"line {number}: bad cue timing {line.strip()[:80]!r} (want {want})")


def read_vtt(text: str) -> list[Turn]:
    """WebVTT: voice tags (`<v Name>`, Teams) or `Name: text` cues (Zoom); NOTE and STYLE blocks ignored."""
    try:
        captions = webvtt.from_buffer(io.StringIO(text)).captions
    except (MalformedFileError, MalformedCaptionError) as exc:
        raise InputError(
            "malformed_vtt", f"not a valid WebVTT file ({exc}); it must start with a WEBVTT line"
        ) from exc
    _check_timings(text, VTT_TIMING, "malformed_vtt", "HH:MM:SS.mmm --> HH:MM:SS.mmm")
    if not captions:
        raise InputError("malformed_vtt", "the WebVTT file has no cues")
    return [
        _cue(
            caption.voice,
            html.unescape(caption.text),
            _vtt_seconds(caption.start_time),
            _vtt_seconds(caption.end_time),
        )
        for caption in captions
    ]


def _cue(voice: str | None, body: str, start: float, end: float) -> Turn:
    """A cue's turn: the speaker from its voice tag, else from a `Name: text` prefix, else none."""
    speaker, body = (voice.strip(), body) if voice else split_speaker(body)
    return Turn.model_construct(
        speaker=speaker, text=body, start=start, end=end
    )  # typed here: no re-validation


def _vtt_seconds(stamp: Any) -> float:
    hours, minutes, seconds, millis = stamp.to_tuple()
    return round(float(hours * 3600 + minutes * 60 + seconds + millis / 1000), 3)


def read_srt(text: str) -> list[Turn]:
    """SRT: numbered cues; the speaker, if any, as a voice tag or a `Name: text` prefix."""
    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as exc:
        line = text.count("\n", 0, exc.expected_start) + 1
        raise InputError(
            "malformed_srt",
            f"not a valid SRT file: unreadable cue near line {line} (want index, timing, text)",
        ) from exc
    _check_timings(text, SRT_FULL_TIMING, "malformed_srt", "HH:MM:SS,mmm --> HH:MM:SS,mmm")
    if not subtitles:
        raise InputError("malformed_srt", "the SRT file has no cues")
    return [
        _cue(
            voice["speaker"] if (voice := VOICE_TAG.match(sub.content)) else None,
            MARKUP.sub("", sub.content),
            round(sub.start.total_seconds(), 3),
            round(sub.end.total_seconds(), 3),
        )
        for sub in subtitles
    ]


def _header(line: str) -> tuple[str, float] | None:
    match = TXT_HEADER.match(line)
    if not match:
        return None
    return (match["bracketed"] or match["plain"]).strip(), _clock(match["time"])


def read_txt(text: str) -> list[Turn]:
    """`Speaker: text` lines (a line without a label continues the turn), Otter/Zoom headers, or prose.

    A transcript whose first line names no speaker is prose: one speakerless turn per paragraph.
    """
    lines = [line.strip() for line in text.splitlines()]
    first = next(line for line in lines if line)
    if _header(first) is None and split_speaker(first)[0] is None:
        paragraphs = re.split(r"\n\s*\n", text.strip())
        return [Turn(speaker=None, text=" ".join(p.split())) for p in paragraphs if p.strip()]
    turns: list[Turn] = []
    for line in lines:
        if not line:
            continue
        if (header := _header(line)) is not None:
            turns.append(Turn(speaker=header[0], text="", start=header[1]))
            continue
        speaker, body = split_speaker(line)
        if speaker is not None:
            turns.append(Turn(speaker=speaker, text=body))
        elif turns:
            turns[-1].text = f"{turns[-1].text} {line}"
        else:
            turns.append(Turn(speaker=None, text=line))
    return turns


def _json_error(where: str, problem: str) -> InputError:
    return InputError(
        "bad_json_shape",
        f"{where}: {problem}. Expected a list of turns, or an object with a "
        f'{" / ".join(repr(k) for k in JSON_LISTS)} list; each turn {{"speaker", "text", "start", "end"}} '
        "with text a string, speaker a string or null, start/end seconds or null",
    )


def _seconds(where: str, item: dict[str, Any], key: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_SECONDS:
        # NaN fails the range too; a huge integer must not reach float() (OverflowError).
        shown = "a number that large" if isinstance(value, int) and abs(value) > MAX_SECONDS else repr(value)
        raise _json_error(where, f"{key!r} must be a number of seconds from 0 to {MAX_SECONDS}, not {shown}")
    return float(value)


def _json_turn(where: str, item: Any) -> Turn:
    if not isinstance(item, dict):
        raise _json_error(where, f"a turn must be an object, not {type(item).__name__}")
    if not isinstance(item.get("text"), str):
        raise _json_error(where, 'missing string "text"')
    speaker = item.get("speaker")
    if isinstance(speaker, int) and not isinstance(speaker, bool):
        speaker = f"Speaker {speaker}"  # diarizers number their speakers
    if speaker is not None and not isinstance(speaker, str):
        raise _json_error(where, f'"speaker" must be a string or null, not {speaker!r}')
    return Turn(
        speaker=speaker,
        text=item["text"],
        start=_seconds(where, item, "start"),
        end=_seconds(where, item, "end"),
    )


def read_json(text: str) -> list[Turn]:
    """A list of turns, or `{"segments": [...]}` (speech-to-text), `{"utterances": [...]}`, `{"turns": [...]}`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            "malformed_json", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number; nesting past Python's stack
        raise InputError(
            "malformed_json", f"JSON this reader cannot take: {exc or 'nested too deeply'}"
        ) from exc
    key = next((k for k in JSON_LISTS if isinstance(data, dict) and k in data), None)
    items = data[key] if key else data
    if not isinstance(items, list):
        raise _json_error(key or "the document", f"found {type(items).__name__}, not a list")
    return [_json_turn(f"{key or 'turns'}[{i}]", item) for i, item in enumerate(items)]


READERS: dict[str, Callable[[str], list[Turn]]] = {
    "vtt": read_vtt,
    "srt": read_srt,
    "txt": read_txt,
    "json": read_json,
}


def detect_format(text: str) -> str:
    """From content, never from a file name: platforms name files carelessly."""
    head = text.lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith("{") or re.match(r"\[\s*[{\]]", head):
        return "json"
    first_lines = [line for line in head.splitlines()[:4] if line.strip()][:2]
    if any(SRT_TIMING.match(line) for line in first_lines):
        return "srt"
    return "txt"
