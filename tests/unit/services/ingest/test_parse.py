"""Parsing every format into normalized turns, and refusing bad input with its own code."""

import json
import tracemalloc

import pytest

from services.ingest.decode import read_capped
from services.ingest.parse import parse
from shared.errors import InputError
from tests.factories import BAD_INPUTS

LIMITS = {"max_bytes": 10_000, "max_turns": 100}


def turns(raw: bytes, **options) -> list[tuple]:
    parsed = parse(raw, **(LIMITS | options))
    return [(t.speaker, t.text, t.start, t.end) for t in parsed.turns]


def test_plain_speaker_lines_become_turns() -> None:
    raw = b"Ann: we ship Friday.\nBo: only if QA passes\n  and the docs are done.\n\nAnn: agreed {vocalsound} .\n"
    assert parse(raw, **LIMITS).format == "txt"
    assert turns(raw) == [
        ("Ann", "we ship Friday.", None, None),
        ("Bo", "only if QA passes and the docs are done.", None, None),
        ("Ann", "agreed .", None, None),
    ]


def test_speakerless_prose_is_one_turn_per_paragraph() -> None:
    raw = b"We met and agreed: the budget\nis fine.\n\nNext steps are below."
    assert turns(raw) == [
        (None, "We met and agreed: the budget is fine.", None, None),
        (None, "Next steps are below.", None, None),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"Jane Doe  0:03\nHello all.\nWelcome.\n\nBob  1:02:03\nHi.\n",  # Otter
        b"[Jane Doe] 00:00:03\nHello all.\nWelcome.\n[Bob] 01:02:03\nHi.\n",  # Zoom's text export
    ],
)
def test_txt_with_speaker_and_time_headers(raw: bytes) -> None:
    assert turns(raw) == [("Jane Doe", "Hello all. Welcome.", 3.0, None), ("Bob", "Hi.", 3723.0, None)]


def test_webvtt_voice_tags_cue_ids_notes_and_multiline_cues() -> None:
    raw = b"""WEBVTT - Teams export
Kind: captions

NOTE the recorder's note,
over two lines

STYLE
::cue { color: yellow }

0b1c2d3e-aaaa/12-0
00:00:01.230 --> 00:00:04.560
<v Alice Smith>Hello &amp; welcome,
<b>everyone</b>.</v>

0b1c2d3e-aaaa/13-0
00:00:04.560 --> 00:00:06.000 align:start
<v.loud Alice Smith>Shall we start?</v>

00:00:06.000 --> 00:01:02.500
<v Bob>Yes: the budget first.
"""
    assert parse(raw, **LIMITS).format == "vtt"
    assert turns(raw) == [
        ("Alice Smith", "Hello & welcome, everyone. Shall we start?", 1.23, 6.0),  # two cues, one turn
        ("Bob", "Yes: the budget first.", 6.0, 62.5),
    ]


def test_webvtt_zoom_style_speaker_prefixes() -> None:
    raw = b"WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.000\nAnn Lee: Morning.\n\n2\n00:00:02.000 --> 00:00:03.000\nOkay.\n"
    assert turns(raw) == [("Ann Lee", "Morning.", 0.0, 2.0), (None, "Okay.", 2.0, 3.0)]


def test_srt_cues_with_speakers_and_markup() -> None:
    raw = (
        b"1\r\n00:00:01,000 --> 00:00:02,500\r\nAnn: <i>hello</i>\r\n\r\n"
        b"2\r\n00:00:02,500 --> 00:00:04,000\r\n{\\an8}Ann: still me\r\n\r\n"
        b"3\r\n00:00:04,000 --> 00:00:05,000\r\nBo: hi\r\nthere\r\n"
    )
    assert parse(raw, **LIMITS).format == "srt"
    assert turns(raw) == [("Ann", "hello still me", 1.0, 4.0), ("Bo", "hi there", 4.0, 5.0)]


@pytest.mark.parametrize(
    "doc",
    [
        [{"speaker": "Ann", "text": "hi", "start": 0, "end": 1.5}, {"speaker": "Bo", "text": "yo"}],
        {
            "segments": [
                {"speaker": "Ann", "text": " hi", "start": 0, "end": 1.5},
                {"speaker": "Bo", "text": "yo"},
            ]
        },
        {
            "utterances": [
                {"speaker": "Ann", "text": "hi", "start": 0.0, "end": 1.5},
                {"speaker": "Bo", "text": "yo"},
            ]
        },
        {
            "turns": [
                {"speaker": "Ann", "text": "hi", "start": 0, "end": 1.5},
                {"speaker": "Bo", "text": "yo"},
            ]
        },
    ],
)
def test_json_shapes(doc) -> None:
    assert parse(json.dumps(doc).encode(), **LIMITS).format == "json"
    assert turns(json.dumps(doc).encode()) == [("Ann", "hi", 0.0, 1.5), ("Bo", "yo", None, None)]


def test_json_from_speech_to_text_without_speakers_or_with_numbered_ones() -> None:
    whisper = {"text": "...", "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": " Hello."}]}
    assert turns(json.dumps(whisper).encode()) == [(None, "Hello.", 0.0, 2.0)]
    diarized = [{"speaker": 0, "text": "a"}, {"speaker": 1, "text": "b"}]
    assert [t[0] for t in turns(json.dumps(diarized).encode())] == ["Speaker 0", "Speaker 1"]


def test_format_is_detected_from_content_and_can_be_forced() -> None:
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\nAnn: hi\n"
    assert parse(vtt, **LIMITS).format == "vtt"
    forced = parse(vtt, format="txt", **LIMITS)  # read as text, every line is prose
    assert forced.format == "txt" and forced.turns[0].speaker is None
    with pytest.raises(InputError) as err:
        parse(b"Ann: hi", format="vtt", **LIMITS)
    assert err.value.code == "malformed_vtt"


def test_cleaning_steps_are_named_and_configurable() -> None:
    raw = b"Ann: so {disfmarker} we [inaudible] ship {vocalsound}\n"
    assert turns(raw)[0][1] == "so we [inaudible] ship"  # the default: annotation tags only
    assert turns(raw, cleaning=())[0][1] == "so {disfmarker} we [inaudible] ship {vocalsound}"
    assert turns(raw, cleaning=("annotation_tags", "noise_notes"))[0][1] == "so we ship"


def test_cues_left_empty_by_cleaning_vanish_and_their_neighbours_merge() -> None:
    raw = b"Ann: one\nBo: {vocalsound}\nAnn: two\n"
    assert turns(raw) == [("Ann", "one two", None, None)]


def test_utf16_with_a_byte_order_mark_is_text() -> None:
    assert turns("Ann: héllo".encode("utf-16")) == [("Ann", "héllo", None, None)]
    with pytest.raises(InputError) as err:
        parse("Ann: hi".encode("utf-16") + b"\x00", **LIMITS)  # odd length: not UTF-16 after all
    assert err.value.code == "not_utf8"


@pytest.mark.parametrize(("raw", "options", "code"), BAD_INPUTS)
def test_bad_input_gets_its_own_code(raw: bytes, options: dict, code: str) -> None:
    with pytest.raises(InputError) as err:
        parse(raw, **(LIMITS | options))
    assert err.value.code == code
    assert err.value.status == "rejected"
    assert len(err.value.message) > 20


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path) -> None:
    path = tmp_path / "huge.vtt"
    with path.open("wb") as f:
        f.truncate(2_000_000_000)  # sparse: 2 GB on paper, nothing on disk
    tracemalloc.start()
    with pytest.raises(InputError) as err:
        read_capped(path, 5_000_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert err.value.code == "too_large" and "2,000,000,000" in err.value.message
    assert peak < 1_000_000


def test_a_file_at_the_limit_is_read_whole(tmp_path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes(b"Ann: " + b"a" * 95)
    assert read_capped(path, 100) == path.read_bytes()


def test_strange_but_valid_transcripts_parse() -> None:
    limits = {"max_bytes": 5_000_000, "max_turns": 50_000}
    one_line = ("Ann: " + "word " * 30_000).encode()
    assert len(parse(one_line, **limits).turns[0].text.split()) == 30_000
    crowd = "".join(f"Speaker {i}: point {i}\n" for i in range(5_000)).encode()
    assert len({t.speaker for t in parse(crowd, **limits).turns}) == 5_000
    mixed = "Ann: 🎉🚀 shipped!\nمحمد: نعم، تم الإطلاق\nנועה: מעולה\n".encode()
    assert [t.speaker for t in parse(mixed, **limits).turns] == ["Ann", "محمد", "נועה"]
    assert parse("Ann: 👍👍".encode(), **limits).turns[0].text == "👍👍"


def test_unknown_cleaning_steps_are_refused_where_a_process_starts() -> None:
    from services.ingest.parse import check
    from shared.config import Settings

    check(Settings(_env_file=None, cleaning=["annotation_tags", "noise_notes"]))
    with pytest.raises(
        ValueError, match=r"unknown RECAP_CLEANING steps \['umms'\]; choose from annotation_tags"
    ):
        check(Settings(_env_file=None, cleaning=["umms"]))
