"""Bytes as received -> text, refusing what is not a text transcript before any parsing."""

from __future__ import annotations

import codecs
from pathlib import Path

from shared.errors import InputError

# Windows tools still save "Unicode" text as UTF-16 with a byte-order mark; that is text, not binary.
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def too_large(size: int, max_bytes: int, name: str = "the transcript") -> InputError:
    return InputError(
        "too_large",
        f"{name} is {size:,} bytes; the limit is {max_bytes:,} (RECAP_MAX_TRANSCRIPT_BYTES): "
        "split the meeting or raise the limit",
    )


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing an oversized file from its size alone, before reading it."""
    size = path.stat().st_size
    if size > max_bytes:
        raise too_large(size, max_bytes, path.name)
    with path.open("rb") as f:
        raw = f.read(max_bytes + 1)  # the file may grow between stat and read
    if len(raw) > max_bytes:
        raise too_large(len(raw), max_bytes, path.name)
    return raw


def decode(raw: bytes, *, max_bytes: int) -> str:
    """UTF-8 (with or without BOM) or BOM-marked UTF-16 text; an InputError says why anything else is refused."""
    if len(raw) > max_bytes:
        raise too_large(len(raw), max_bytes)
    if not raw:
        raise InputError("empty_file", "the transcript file is empty (0 bytes): send the exported transcript")
    if raw.startswith(UTF16_BOMS):
        try:
            raw = raw.decode("utf-16").encode()
        except UnicodeDecodeError as exc:
            raise InputError(
                "not_utf8",
                f"the transcript starts like UTF-16 text but is not ({exc.reason}); export it as UTF-8",
            ) from exc
    if b"\x00" in raw[:8192]:
        raise InputError(
            "binary_file",
            "the file contains NUL bytes: it looks like audio, video or a document, not a text transcript; "
            "send the transcript as .vtt, .srt, .txt or .json",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            "not_utf8",
            f"the transcript is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "export or re-save it as UTF-8",
        ) from exc
    if not text.strip():
        raise InputError(
            "whitespace_only", "the transcript holds only whitespace: there is nothing to summarize"
        )
    return text
