"""`recap calibrate` and `recap eval` as users run them, on QMSum's dev meetings with random-weight models."""

import json
import os
import subprocess
import sys

import pytest

from inference.scores import SCORES
from shared.config import Settings

RECAP = [sys.executable, "-m", "recap.cli"]


@pytest.fixture
def env(test_models, tmp_path) -> dict[str, str]:
    small, large = test_models
    return os.environ | {
        "RECAP_SMALL_MODEL": str(small),
        "RECAP_LARGE_MODEL": str(large),
        "RECAP_DEVICE": "cpu",
        "RECAP_TORCH_THREADS": "1",
        "RECAP_SMALL_MAX_INPUT_TOKENS": "1024",
        "RECAP_LARGE_MAX_INPUT_TOKENS": "1024",
        "RECAP_SUMMARY_TOKENS_MEDIUM": "16",
        "RECAP_CHUNK_SUMMARY_TOKENS": "16",
        "RECAP_GATE_FILE": str(tmp_path / "var" / "gate.json"),
    }


def recap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*RECAP, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_calibrate_for_a_budget_writes_the_settings_every_process_reads(env, team_dir, tmp_path) -> None:
    data = team_dir / "data/qmsum/dev.jsonl"
    out = json.loads(
        recap(env, "calibrate", "--data", str(data), "--limit", "4", "--budget", "0.0002", "--json").stdout
    )
    # c_s and c_l were measured on these meetings; the rate is the cascade formula's.
    c_s, c_l = out["small_cost_usd"], out["large_cost_usd"]
    assert c_s > 0 and c_l > 0
    assert out["rate"] == pytest.approx(min(max((0.0002 - c_s) / c_l, 0), 1), abs=1e-9)
    assert set(out["thresholds"]) == set(SCORES) and out["policy"] == "budget"

    # What the stack's processes read from the file, with no further step.
    settings = _settings_with(env)
    assert settings.gate_policy == "budget" and settings.gate_score == "mean_margin"
    assert settings.gate_threshold == out["thresholds"]["mean_margin"]
    assert float(settings.gate_budget_per_job_usd) == 0.0002
    assert float(settings.gate_large_cost_usd) == pytest.approx(c_l)
    assert settings.gate_calibration["meetings"] == 4


def _settings_with(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_calibrate_and_eval_refuse_what_they_cannot_use(env, tmp_path) -> None:
    both = subprocess.run(
        [*RECAP, "calibrate", "--data", "x.jsonl", "--target-rate", "0.2", "--budget", "1"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert both.returncode == 2 and "exactly one of --target-rate and --budget" in both.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "m1", "text": "no turns here"}\n')
    done = subprocess.run(
        [*RECAP, "calibrate", "--data", str(bad), "--target-rate", "0.2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "bad_meetings_file" and "bad.jsonl:1" in done.stdout
    unreferenced = tmp_path / "no-reference.jsonl"
    unreferenced.write_text(json.dumps({"id": "m1", "turns": [{"speaker": "Ann", "text": "we ship"}]}) + "\n")
    done = subprocess.run(
        [*RECAP, "eval", "--data", str(unreferenced), "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and json.loads(done.stdout)["code"] == "no_reference"
    assert not (tmp_path / "out").exists()  # refused before any model ran
    done = subprocess.run(
        [*RECAP, "eval", "--data", str(unreferenced), "--domain", "product", "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and json.loads(done.stdout)["code"] == "bad_meetings_file"
    assert "holds no meetings of domain 'product'" in json.loads(done.stdout)["message"]


def test_eval_reports_every_score_and_baseline_with_rouge_costs_and_intervals(
    env, team_dir, tmp_path
) -> None:
    from rouge_score import rouge_scorer

    data = team_dir / "data/qmsum/dev.jsonl"
    args = [
        "eval",
        "--data",
        str(data),
        "--limit",
        "3",
        "--resamples",
        "50",
        "--cache",
        str(tmp_path / "cache"),
    ]
    first = recap(env, *args, "--out", str(tmp_path / "eval"), "--budget", "0.0001", "--json")
    result = json.loads(first.stdout)
    report = result["report"]
    assert "large model" in first.stderr and "words" in first.stderr  # the progress bars
    assert set(report["methods"]) == set(SCORES) | {"random", "length", "oracle"}
    assert report["jobs"] == 3 and report["metrics"] == ["rouge1", "rouge2", "rougeL"]
    for name, curve in report["methods"].items():
        points = curve["points"]
        assert [p["target_rate"] for p in points] == pytest.approx([i / 20 for i in range(21)]), name
        costs = [p["cost_per_job"] for p in points]
        assert costs == sorted(costs) and costs[0] == pytest.approx(report["cost_range"][0])
        assert costs[-1] == pytest.approx(report["cost_range"][1])
        assert all(0 <= a <= 1 for a in curve["auc"].values())
        spans = result["bootstrap"]["methods"][name]
        assert all(spans["area"][m]["low"] <= spans["area"][m]["high"] for m in report["metrics"])
        assert len(spans["points"]) == 21
    assert set(result["bootstrap"]["methods"]["mean_margin"]["versus"]) == {"random", "length"}
    assert result["bootstrap"]["resamples"] == 50
    gate = result["buyer"]["mean_margin"]
    assert [p["target_rate"] for p in gate["rates"]] == [0.1, 0.2, 0.3, 0.5]
    assert [f["calibrated_on"] for f in result["calibration_check"]["mean_margin"]] == ["first", "second"]
    assert result["budget"]["budget_per_job_usd"] == 0.0001
    assert result["models"]["small"]["weights_sha256"] and result["prices_usd"]["small"]["per_second"]

    written = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert written == result
    assert {p.name for p in (tmp_path / "eval").glob("*.png")} == {
        "eval_rouge1.png", "eval_rouge2.png", "eval_rougeL.png", "eval_margins.png"
    }  # fmt: skip
    # ROUGE against the human general summary, stemming on, recomputed independently for one job.
    meeting = json.loads(data.read_text().splitlines()[0])
    job = written["jobs"][0]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    assert (
        job["small"]["rougeL"]
        == scorer.score(meeting["general_summary"], job["small_text"])["rougeL"].fmeasure
    )
    assert report["always_small"]["rougeL"] == pytest.approx(
        sum(j["small"]["rougeL"] for j in written["jobs"]) / 3
    )
    assert all(j["cost_large_usd"] > 0 and j["cost_small_usd"] > 0 for j in written["jobs"])

    # A second run replays every model call from the cache: the same report, costs included.
    again = recap(env, *args, "--out", str(tmp_path / "again"), "--budget", "0.0001", "--json")
    assert json.loads(again.stdout) == result
    assert "small model: 0 calls made" in again.stderr and "large model: 0 calls made" in again.stderr
    assert "small model: 0 calls made" not in first.stderr
