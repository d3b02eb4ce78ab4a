"""`recap tune segments`: the segment-level evaluation set, from validation meetings only.

Whole meetings are few (30 dev meetings give wide intervals); their summary-like parts are many. The items are
built exactly as the training examples are (`data.py`), from the other side of the split: QMSum val's
summary-like queries about a part of the meeting (their relevant turns -> the human answer) and AMI's linked
items of QMSum's validation meetings (the dialogue acts -> the abstract, action, decision or problem sentence).
Each is written as a short meeting (`{"id", "turns", "general_summary", "domain"}`) so `recap eval` and
`recap calibrate` read it like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from recap.tuning.data import Example, ami_examples, jsonl_rows, qmsum_examples

AMI_DOMAINS = {
    "chunk": "ami_abstract",
    "action": "ami_action",
    "decision": "ami_decision",
    "problem": "ami_problem",
}


def _turns(text: str) -> list[dict[str, str]]:
    speakers_and_texts = (line.partition(": ") for line in text.splitlines())
    return [{"speaker": speaker, "text": said} for speaker, _, said in speakers_and_texts]


def _item(example: Example, domain: str) -> dict[str, Any]:
    return {
        "id": example.id,
        "meeting_id": example.meeting,
        "domain": domain,
        "turns": _turns(example.text),
        "general_summary": example.target,
    }


def _validation_examples(team_data: Path) -> Iterator[tuple[Example, str]]:
    for meeting in jsonl_rows(team_data / "qmsum/val.jsonl"):
        for example in qmsum_examples(meeting):
            if example.task == "chunk":  # a part of the meeting: whole meetings are `recap eval`'s dev run
                yield example, f"qmsum_{meeting.get('domain', 'unknown')}"
    timed = {t["id"]: t for t in jsonl_rows(team_data / "ami/timed.jsonl")}
    for annotated in jsonl_rows(team_data / "ami/structured.jsonl"):
        if annotated["qmsum_split"] == "val":
            for example in ami_examples(annotated, timed.get(annotated["id"])):
                yield example, AMI_DOMAINS[example.task]


def build(team_data: Path, *, min_words: int = 30, max_words: int = 1200) -> list[dict[str, Any]]:
    """Every validation item with `min_words` to `max_words` words of transcript, in a stable order.

    Each is one human's summary of those turns: an answer to "summarize the discussion of X", or an abstract,
    action, decision or problem sentence (scored as what a summary of the turns should say)."""
    items = [
        _item(example, domain)
        for example, domain in _validation_examples(team_data)
        if min_words <= len(example.text.split()) <= max_words
    ]
    return [item for item in items if all(turn["text"] for turn in item["turns"])]


def write(items: Sequence[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
