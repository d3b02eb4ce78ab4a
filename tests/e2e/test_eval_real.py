"""`recap eval` as docs/evaluation.md runs it, on the openings of two real QMSum meetings with the real small model in
both tiers (the 1.1 GB large model belongs to the benchmark run; whole meetings take minutes on a CPU): real
summaries, real ROUGE, a second human reference, and a rerun that makes no model call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inference.backends.bundled import BUNDLES
from tests.e2e.helpers import shortest

pytestmark = pytest.mark.e2e


def opening(meeting: dict, words: int = 250) -> dict:
    """The meeting's first turns, up to about `words` words: one model call per tier."""
    kept, count = [], 0
    for turn in meeting["turns"]:
        if count >= words:
            break
        kept.append(turn)
        count += len(turn["text"].split())
    return meeting | {"turns": kept}


def test_eval_on_two_real_meetings_with_the_real_small_model(
    dev_meetings, team_dir, smollm2, tmp_path
) -> None:
    data = tmp_path / "two.jsonl"
    meetings = [opening(m) for m in shortest(dev_meetings, 2)]
    data.write_text("".join(json.dumps(m) + "\n" for m in meetings))
    env = os.environ | {
        "RECAP_SMALL_MODEL": "bundled:smollm2-135m-instruct",
        "RECAP_LARGE_MODEL": "bundled:smollm2-135m-instruct",
        "RECAP_MODELS_DIR": str(smollm2.parent),
        "RECAP_TORCH_THREADS": "2",
        "RECAP_GATE_FILE": str(tmp_path / "gate.json"),
    }
    command = [
        sys.executable, "-m", "recap.cli", "eval", "--data", str(data), "--out", str(tmp_path / "out"),
        "--name", "two", "--cache", str(tmp_path / "cache"), "--resamples", "200",
        "--second-reference", str(team_dir / "data/ami/ami_abstracts.jsonl"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "small model: 0 calls made" not in done.stderr
    result = json.loads((tmp_path / "out" / "two.json").read_text())
    assert [j["id"] for j in result["jobs"]] == [m["id"] for m in meetings]
    for job in result["jobs"]:
        # Real summaries of real meetings: words, overlap with the human summary, the model's own margins.
        assert len(job["small_text"].split()) >= 10, job["small_text"]
        assert 0 < job["small"]["rougeL"] < 1 and 0 < job["scores"]["mean_margin"] < 1
    assert result["models"]["small"]["weights_sha256"] == BUNDLES["smollm2-135m-instruct"].sha256
    # Both product meetings have an AMI abstract: two humans, and the model against each.
    second = result["second_reference"]
    assert second["meetings"] == [m["id"] for m in meetings]
    assert 0 < second["human"]["rougeL"] < 1 and 0 < second["small"]["ami"]["rougeL"] < 1
    assert "area per method" in done.stdout and "the gate's score, mean_margin" in done.stdout
    assert {p.name for p in (tmp_path / "out").glob("*.png")} >= {"two_rougeL.png", "two_margins.png"}
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert "small model: 0 calls made" in again.stderr and "large model: 0 calls made" in again.stderr
    assert json.loads((tmp_path / "out" / "two.json").read_text()) == result
