"""`recap tune data`: examples in the stages' shapes, and no held-out meeting in training, by id or by text."""

import json
from pathlib import Path

import pytest

from recap.cascade import load_meetings
from recap.tuning import segments
from recap.tuning.data import build, held_out, qmsum_examples, transcript_sha256
from shared.errors import InputError


def _meeting(mid: str, words: str, **extra) -> dict:
    turns = [
        {"speaker": "Ann", "text": f"{words} {{vocalsound}} one"},
        {"speaker": "Bo", "text": f"{words} two"},
    ]
    turns += [{"speaker": "Cy", "text": f"{words} three"}, {"speaker": "Ann", "text": f"{words} four"}]
    queries = [
        {
            "query": "Summarize the whole meeting.",
            "answer": "All of it.",
            "type": "general",
            "relevant_text_span": [],
        },
        {
            "query": "Summarize the discussion about the budget",
            "answer": "Budget talk.",
            "type": "specific",
            "relevant_text_span": [[0, 1]],
        },
        {
            "query": "What did Bo say about the colour?",
            "answer": "Red.",
            "type": "specific",
            "relevant_text_span": [[1, 1]],
        },
        {
            "query": "Summarize the discussion about testing",
            "answer": "Test talk.",
            "type": "specific",
            "relevant_text_span": [[2, 3]],
        },
    ]
    return {"id": mid, "turns": turns, "queries": queries, "general_summary": "The whole summary.", **extra}


def _team(tmp_path: Path, train: list[dict], val: list[dict]) -> Path:
    data = tmp_path / "data"
    (data / "qmsum").mkdir(parents=True)
    (data / "ami").mkdir()
    for name, rows in (("train", train), ("val", val), ("dev", val[:1])):
        (data / f"qmsum/{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "ami/timed.jsonl").write_text("")
    (data / "ami/structured.jsonl").write_text("")
    return data


def test_summary_queries_become_chunk_examples_and_the_topics_a_merge_example() -> None:
    examples = list(qmsum_examples(_meeting("TR1", "we plan")))
    by_task = {e.task: e for e in examples}
    assert sorted(e.task for e in examples) == [
        "chunk",
        "chunk",
        "final",
        "final_merge",
    ]  # not the fact question
    assert by_task["final_merge"].text == "Budget talk.\nTest talk."  # topic summaries in meeting order
    assert by_task["final_merge"].target == "The whole summary."
    chunk = next(e for e in examples if e.target == "Budget talk.")
    assert chunk.text == "Ann: we plan one\nBo: we plan two"  # its span's turns, annotation tags gone


def test_a_val_meeting_planted_under_another_name_is_refused_by_its_text(tmp_path: Path) -> None:
    val = _meeting("VAL1", "the held out words")
    planted = {**val, "id": "TRAIN99"}  # renamed, same transcript
    with pytest.raises(InputError) as refused:
        build(_team(tmp_path, [_meeting("TR1", "we plan"), planted], [val]))
    assert refused.value.code == "held_out_meeting_in_training" and "TRAIN99" in refused.value.message


def test_a_val_meeting_planted_under_its_own_id_is_refused(tmp_path: Path) -> None:
    val = _meeting("VAL1", "the held out words")
    planted = _meeting("VAL1", "other words entirely")
    with pytest.raises(InputError, match="VAL1"):
        build(_team(tmp_path, [planted], [val]))


def test_the_hash_of_a_transcript_ignores_case_punctuation_and_annotation_tags() -> None:
    assert transcript_sha256(["We ship, {disfmarker} Friday."]) == transcript_sha256(["we ship friday"])
    assert transcript_sha256(["we ship friday"]) != transcript_sha256(["we ship monday"])


def test_the_team_folders_training_set_holds_no_held_out_meeting(team_dir: Path) -> None:
    data = team_dir / "data"
    examples = build(data)
    held = held_out(data)
    assert len(examples) > 1000
    assert {e.source for e in examples} == {"qmsum_query", "qmsum_merge", "ami_item"}
    assert not {e.meeting for e in examples} & held.ids
    assert not {e.transcript_sha256 for e in examples} & held.hashes
    assert len({e.id for e in examples}) == len(examples)


def test_the_segment_set_holds_the_parts_of_validation_meetings_as_short_meetings(tmp_path: Path) -> None:
    words = "we weigh the budget against the schedule and agree to keep the launch on friday"
    team = _team(tmp_path, [_meeting("TR1", words)], [_meeting("VAL1", words)])
    path = tmp_path / "segments.jsonl"
    segments.write(segments.build(team, min_words=5), path)
    items = load_meetings(path)
    assert [m.id for m in items] == [
        "qmsum:VAL1:q1",
        "qmsum:VAL1:q3",
    ]  # parts only: no whole meeting, no fact
    assert items[0].turns == [("Ann", f"{words} one"), ("Bo", f"{words} two")]
    assert items[0].reference == "Budget talk."


def test_the_team_folders_segment_set_is_several_hundred_held_out_items(team_dir: Path) -> None:
    data = team_dir / "data"
    items = segments.build(data)
    assert len(items) >= 250
    assert {i["meeting_id"] for i in items} <= held_out(data).ids
    assert {i["domain"] for i in items} >= {"qmsum_product", "ami_abstract", "ami_decision"}
