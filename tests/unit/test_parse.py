import json

import pytest

from services.ingestion.parse import parse
from shared.errors import InputError

LIMITS = {"max_bytes": 10_000, "max_turns": 100}


def test_plain_speaker_lines_become_turns() -> None:
    raw = b"Ann: we ship Friday.\nBo: only if QA passes\n  and the docs are done.\n\nAnn: agreed {vocalsound} .\n"
    parsed = parse(raw, **LIMITS)
    assert parsed.format == "txt"
    assert [(t.speaker, t.text) for t in parsed.turns] == [
        ("Ann", "we ship Friday."),
        ("Bo", "only if QA passes and the docs are done."),
        ("Ann", "agreed ."),
    ]


def test_speakerless_prose_is_one_turn_without_speaker() -> None:
    parsed = parse(b"We met and agreed on the budget.", **LIMITS)
    assert [(t.speaker, t.text) for t in parsed.turns] == [(None, "We met and agreed on the budget.")]


@pytest.mark.parametrize("wrap", [lambda turns: turns, lambda turns: {"turns": turns}])
def test_json_turns_in_a_list_or_under_turns(wrap) -> None:
    turns = [{"speaker": "Ann", "text": "hello  there"}, {"speaker": "Bo", "text": "{disfmarker} hi"}]
    parsed = parse(json.dumps(wrap(turns)).encode(), **LIMITS)
    assert parsed.format == "json"
    assert [(t.speaker, t.text) for t in parsed.turns] == [("Ann", "hello there"), ("Bo", "hi")]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty"),
        (b" \n\t\n", "empty"),
        (b"\xff\xfe\x00garbage", "not_utf8"),
        (b"Ann: hi\x00there", "not_utf8"),
        (b"x" * 10_001, "too_large"),
        (b'[{"speaker": "Ann", ', "bad_json"),
        (b'{"segments": 3}', "bad_json_shape"),
        (b'[{"speaker": "Ann"}]', "bad_json_shape"),
        (b'[{"speaker": 7, "text": "hi"}]', "bad_json_shape"),
        (b"Ann: {disfmarker} {vocalsound}\n", "no_words"),
        (b"".join(b"S%d: hi\n" % i for i in range(101)), "too_many_turns"),
    ],
)
def test_bad_input_gets_its_own_code(raw: bytes, code: str) -> None:
    with pytest.raises(InputError) as err:
        parse(raw, **LIMITS)
    assert err.value.code == code
    assert err.value.status == "rejected"
    assert err.value.message


def test_a_forced_unsupported_format_is_refused() -> None:
    with pytest.raises(InputError) as err:
        parse(b"Ann: hi", format="docx", **LIMITS)
    assert err.value.code == "unsupported_format"
