"""Transcript parsing: bytes as received -> normalized turns, or an InputError with a specific code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.ingest.cleaning import CLEANERS, clean, merge_speakers
from services.ingest.decode import decode
from services.ingest.readers import READERS, detect_format
from shared.config import Settings, get_settings
from shared.errors import InputError
from shared.schemas import Turn

FORMATS = tuple(READERS)


@dataclass(frozen=True)
class ParsedTranscript:
    format: str
    turns: list[Turn]


def parse(
    raw: bytes,
    *,
    max_bytes: int,
    max_turns: int,
    format: str | None = None,
    cleaning: Sequence[str] = ("annotation_tags",),
) -> ParsedTranscript:
    """Validates and normalizes a transcript; raises InputError with a code a user can act on.

    `format` forces a reader (else it is detected from the content); `cleaning` names the steps to run.
    """
    if format is not None and format not in READERS:
        raise InputError(
            "unsupported_format", f"format {format!r} is not supported; use one of {', '.join(FORMATS)}"
        )
    text = decode(raw, max_bytes=max_bytes)
    fmt = format or detect_format(text)
    turns = merge_speakers(clean(READERS[fmt](text), cleaning))
    if not turns:
        raise InputError(
            "no_words",
            f"the transcript has no words once cleaning ({', '.join(cleaning) or 'none'}) removed its markup",
        )
    if len(turns) > max_turns:
        raise InputError(
            "too_many_turns", f"{len(turns):,} turns; the limit is {max_turns:,} (RECAP_MAX_TURNS)"
        )
    return ParsedTranscript(fmt, turns)


def parse_as_configured(
    raw: bytes, *, format: str | None = None, settings: Settings | None = None
) -> ParsedTranscript:
    """`parse` with the deployment's limits and cleaning steps: what the stage, the CLI and the benchmarks run."""
    settings = settings or get_settings()
    return parse(
        raw,
        max_bytes=settings.max_transcript_bytes,
        max_turns=settings.max_turns,
        format=format,
        cleaning=settings.cleaning,
    )


def check(settings: Settings) -> None:
    """The ingestion settings make sense (known cleaning steps): checked where a process starts, not per job."""
    if unknown := [step for step in settings.cleaning if step not in CLEANERS]:
        raise ValueError(f"unknown RECAP_CLEANING steps {unknown}; choose from {', '.join(CLEANERS)}")
