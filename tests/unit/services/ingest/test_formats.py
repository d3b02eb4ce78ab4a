"""The team's three real meetings, each in four formats, parse to the same turns as their QMSum source."""

import json
import re

import pytest

from services.ingest.parse import parse
from services.ingest.readers import READERS

STEMS = ("IS1006d", "Bed010", "education_18")
FORMATS = ("vtt", "srt", "txt", "json")
LIMITS = {"max_bytes": 5_000_000, "max_turns": 50_000}


def expected_turns(meeting: dict) -> list[tuple[str, str]]:
    """The QMSum turns as docs/transcripts.md describes: tags removed, empty turns dropped, same speaker joined."""
    out: list[tuple[str, str]] = []
    for turn in meeting["turns"]:
        text = " ".join(re.sub(r"\{[a-z]+\}", " ", turn["text"]).split())
        if not text:
            continue
        if out and out[-1][0] == turn["speaker"]:
            out[-1] = (turn["speaker"], f"{out[-1][1]} {text}")
        else:
            out.append((turn["speaker"], text))
    return out


@pytest.fixture(scope="module")
def formats_dir(team_dir):
    return team_dir / "data/formats"


@pytest.mark.parametrize("stem", STEMS)
def test_all_four_formats_give_the_source_turns(stem, formats_dir, dev_meetings) -> None:
    [meeting] = [m for m in dev_meetings if m["id"] == stem]
    expected = expected_turns(meeting)
    parsed = {fmt: parse((formats_dir / f"{stem}.{fmt}").read_bytes(), **LIMITS) for fmt in FORMATS}

    for fmt, result in parsed.items():
        assert result.format == fmt  # detected from content
        assert [(t.speaker, t.text) for t in result.turns] == expected, fmt
    timed = {fmt: [(t.start, t.end) for t in parsed[fmt].turns] for fmt in ("vtt", "srt", "json")}
    assert timed["vtt"] == timed["srt"] == timed["json"]
    assert all(start is not None and end > start for start, end in timed["vtt"])
    assert all(t.start is None and t.end is None for t in parsed["txt"].turns)


def test_readers_keep_one_turn_per_cue_before_merging(formats_dir) -> None:
    for entry in json.loads((formats_dir / "index.json").read_text()):
        for fmt in FORMATS:
            raw = READERS[fmt]((formats_dir / f"{entry['id']}.{fmt}").read_text())
            assert len(raw) == entry["n_cues"], (entry["id"], fmt)
