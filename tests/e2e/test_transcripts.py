"""Real transcripts through `recap up`: bad input rejected with its code, the longest meetings read whole."""

from __future__ import annotations

import json

import pytest

from tests.factories import BAD_INPUTS, write_meeting

pytestmark = pytest.mark.e2e


def test_bad_inputs_are_rejected_with_their_codes_and_nothing_else_is_lost(
    start_stack, pg_url, redis_url, tmp_path
) -> None:
    stack = start_stack(
        DATABASE_URL=pg_url, REDIS_URL=redis_url, RECAP_MAX_TRANSCRIPT_BYTES="10000", RECAP_MAX_TURNS="100"
    )
    good = tmp_path / "good.txt"
    good.write_text("Ann: we ship on Friday.\nBo: only if QA passes.\n")
    huge = tmp_path / "huge.vtt"
    with huge.open("wb") as f:
        f.truncate(3_000_000_000)  # sparse; submit must refuse it from its size, unread
    submitted: list[tuple[dict, str]] = []
    plain = []
    for i, (raw, options, code) in enumerate(BAD_INPUTS):
        path = tmp_path / f"bad{i}.in"
        path.write_bytes(raw)
        if "format" in options:
            [job] = stack.json_lines("submit", str(path), "--format", options["format"], "--wait", "--json")
            submitted.append((job, code))
        else:
            plain.append((path, code))
    jobs = stack.json_lines("submit", str(good), str(huge), *(str(p) for p, _ in plain), "--wait", "--json")
    submitted += list(zip(jobs[2:], [code for _, code in plain], strict=True))

    assert jobs[0]["status"] == "done" and jobs[0]["summary"]  # the good file in the same batch went through
    assert (jobs[1]["status"], jobs[1]["error"]["code"]) == ("rejected", "too_large")
    assert "3,000,000,000" in jobs[1]["error"]["message"]
    details = stack.json_lines("status", *(job["job_id"] for job, _ in submitted), "--json")
    for detail, (_, code) in zip(details, submitted, strict=True):
        assert detail["status"] == "rejected", detail
        assert detail["error"]["code"] == code and len(detail["error"]["message"]) > 20
        assert detail["finished_at"] is not None
    assert stack.proc.poll() is None  # no worker or stack crashed
    [after] = stack.json_lines("submit", str(good), "--wait", "--json")
    assert after["status"] == "done"


def test_the_longest_meetings_are_read_whole_in_chunks_by_both_tiers(
    start_stack, pg_url, redis_url, team_dir, tmp_path
) -> None:
    meetings = [
        json.loads(line)
        for split in ("train", "val")
        for line in (team_dir / f"data/qmsum/{split}.jsonl").read_text().splitlines()
    ]
    longest = sorted(meetings, key=lambda m: m["n_words"], reverse=True)[:3]
    stack = start_stack(DATABASE_URL=pg_url, REDIS_URL=redis_url, RECAP_GATE_THRESHOLD="1.01")
    files = [str(write_meeting(tmp_path, m)) for m in longest]
    jobs = stack.json_lines("submit", *files, "--length", "long", "--wait", "--timeout", "900", "--json")

    assert [j["status"] for j in jobs] == ["done"] * 3, jobs
    for detail in stack.json_lines("status", *(j["job_id"] for j in jobs), "--json"):
        assert detail["summary_length"] == "long" and detail["tier"] == "large"
        assert detail["truncation_ratio"] == 0.0 and detail["chunks"] > 1
        for summary in detail["summaries"]:
            assert summary["truncation_ratio"] == 0.0 and summary["chunks"] > 1, summary
