"""`recap tune data`: training examples for a tier's model, from the team folder's training meetings only.

Three kinds, each in the shape the stages ask for at run time (the task names a prompt of the tier's style):
- QMSum train's summary-like queries: the turns of their relevant spans -> the human answer (`chunk`; a whole
  meeting's "Summarize the meeting" that fits the window -> `final`);
- the merge step: a meeting's per-topic human summaries, in meeting order -> its general summary (`final_merge`),
  so the last step of a long meeting is trained too;
- AMI's structured annotations: the dialogue acts a summary, decision, action or problem sentence is linked to ->
  that sentence.
No validation, dev or test meeting may enter: `check_held_out` compares ids and hashes of transcript text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.ingest.cleaning import ANNOTATION_TAG
from shared.errors import InputError

# QMSum queries that ask for a summary (the rest ask for one fact: not what a summarizer is trained to do).
SUMMARY_QUERY = re.compile(r"(?i)^\s*(summari[sz]e|what did .+ (discuss|talk about)|what was discussed)")
WHOLE_MEETING = re.compile(r"(?i)^\s*summari[sz]e the (whole )?meeting\.?\s*$")
AMI_TASKS = {"abstract": "chunk", "actions": "action", "decisions": "decision", "problems": "problem"}
HELD_OUT = ("qmsum/val.jsonl", "qmsum/dev.jsonl")


@dataclass(frozen=True)
class Example:
    id: str
    source: str  # qmsum_query | qmsum_merge | ami_item
    meeting: str  # the meeting it comes from (checked against the held-out ids)
    transcript_sha256: str  # of that meeting's whole transcript (checked against the held-out hashes)
    task: str  # which prompt of the tier's style asks for it: chunk | final | final_merge | action | ...
    text: str  # what the model reads
    target: str  # what it should write


def _clean(text: str) -> str:
    return " ".join(ANNOTATION_TAG.sub(" ", text).split())


def transcript_sha256(texts: Iterable[str]) -> str:
    """A meeting's identity by its words, whatever it is called: cleaned, lower-cased, punctuation-free."""
    words = " ".join(re.sub(r"[^\w\s]", " ", _clean(t).lower()) for t in texts).split()
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def _lines(turns: Sequence[dict[str, Any]], spans: Iterable[Sequence[int]]) -> str:
    picked = [turns[i] for start, end in spans for i in range(start, min(end, len(turns) - 1) + 1)]
    lines = (f"{t.get('speaker') or 'Speaker'}: {_clean(t['text'])}" for t in picked)
    return "\n".join(line for line in lines if not line.endswith(": "))


def qmsum_examples(meeting: dict[str, Any]) -> Iterator[Example]:
    turns, mid = meeting["turns"], meeting["id"]
    digest = transcript_sha256(t["text"] for t in turns)
    parts: list[tuple[int, str]] = []
    for n, query in enumerate(meeting["queries"]):
        spans = query.get("relevant_text_span") or []
        if not SUMMARY_QUERY.match(query["query"]) or not query["answer"].strip():
            continue
        whole = bool(WHOLE_MEETING.match(query["query"]))
        if not whole and spans:
            parts.append((int(spans[0][0]), _clean(query["answer"])))
        text = _lines(turns, spans or [[0, len(turns) - 1]])
        if text:
            task = "final" if whole else "chunk"
            yield Example(
                f"qmsum:{mid}:q{n}", "qmsum_query", mid, digest, task, text, _clean(query["answer"])
            )
    if len(parts) >= 2 and meeting.get("general_summary"):
        merged = "\n".join(summary for _, summary in sorted(parts))
        summary = _clean(meeting["general_summary"])
        yield Example(f"qmsum:{mid}:merge", "qmsum_merge", mid, digest, "final_merge", merged, summary)


def ami_examples(annotated: dict[str, Any], timed: dict[str, Any] | None) -> Iterator[Example]:
    mid = annotated["id"]
    roles = (timed or {}).get("roles", {})
    digest = transcript_sha256(s["text"] for s in (timed or {}).get("segments", []))
    for item in annotated["items"]:
        acts = item.get("evidence") or []
        task = AMI_TASKS.get(item["section"])
        if not acts or task is None:
            continue
        text = "\n".join(f"{roles.get(a['speaker'], a['speaker'])}: {_clean(a['text'])}" for a in acts)
        yield Example(f"ami:{item['sid']}", "ami_item", mid, digest, task, text, _clean(item["text"]))


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError("team_data_missing", f"{path} not found: `recap tune data` reads the team folder")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class HeldOut:
    ids: frozenset[str]
    hashes: frozenset[str]


def held_out(team_data: Path) -> HeldOut:
    """Every validation and dev meeting the team folder has, by id and by the hash of its transcript."""
    ids: set[str] = set()
    hashes: set[str] = set()
    for name in HELD_OUT:
        for meeting in jsonl_rows(team_data / name):
            ids.add(meeting["id"])
            hashes.add(transcript_sha256(t["text"] for t in meeting["turns"]))
    for timed in jsonl_rows(team_data / "ami/timed.jsonl"):
        if timed.get("qmsum_split") != "train":  # val, or not in QMSum at all (its test meetings among them)
            ids.add(timed["id"])
            hashes.add(transcript_sha256(s["text"] for s in timed["segments"]))
    for annotated in jsonl_rows(team_data / "ami/structured.jsonl"):
        if annotated["qmsum_split"] != "train":
            ids.add(annotated["id"])
    return HeldOut(frozenset(ids), frozenset(hashes))


def check_held_out(examples: Iterable[Example], held: HeldOut) -> None:
    """Refuses a training set holding any held-out meeting, however it is named."""
    for example in examples:
        if example.meeting in held.ids or example.transcript_sha256 in held.hashes:
            raise InputError(
                "held_out_meeting_in_training",
                f"{example.id}: meeting {example.meeting} is a validation, dev or test meeting (by id or text)",
            )


def build(team_data: Path) -> list[Example]:
    """All training examples, in a stable order; raises if any held-out meeting got in."""
    examples = [e for m in jsonl_rows(team_data / "qmsum/train.jsonl") for e in qmsum_examples(m)]
    timed = {t["id"]: t for t in jsonl_rows(team_data / "ami/timed.jsonl")}
    for annotated in jsonl_rows(team_data / "ami/structured.jsonl"):
        if annotated["qmsum_split"] == "train":
            examples.extend(ami_examples(annotated, timed.get(annotated["id"])))
    check_held_out(examples, held_out(team_data))
    return examples


def write(examples: Sequence[Example], path: Path) -> str:
    """Writes the examples as JSONL; returns the file's sha256 (the manifest names the data by it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in examples)
    path.write_text(body, encoding="utf-8")
    return hashlib.sha256(body.encode()).hexdigest()


def read(path: Path) -> list[Example]:
    return [Example(**row) for row in jsonl_rows(path)]
