"""`recap bench` end to end, small enough for CI: it runs, and its figures hang together."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_recap_bench_measures_direct_and_pipeline(pg_url, redis_url, team_dir, tmp_path) -> None:
    env = os.environ | {"DATABASE_URL": pg_url, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "recap.cli", "bench", "--shape", "tiny", "--jobs", "8", "--batch", "4",
         "--new-tokens", "8", "--out", str(tmp_path), "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # stdout is the JSON alone: the stack's banners went to stderr

    assert result["ratio"] == pytest.approx(result["pipeline_jobs_per_s"] / result["direct_jobs_per_s"])
    assert result["batching_speedup"] == pytest.approx(
        result["pipeline_jobs_per_s"] / result["pipeline_batch1_jobs_per_s"]
    )
    assert 0 < result["overhead_ms_p50"] <= result["overhead_ms_p95"]
    stages = result["stages_ms"]  # the per-stage breakdown of the overhead run, from the ledger's timestamps
    assert set(stages) == {"ingest", "small", "gate", "end"}
    assert all(v >= 0 for part in stages.values() for v in part.values()) and stages["small"]["work"] > 0
    assert 0 < result["latency_s_p50"] <= result["latency_s_p95"]
    assert max(result["pipeline_batch_sizes_seen"]) > 1  # the pipeline really batched
    assert result["settings"]["database"] == "postgresql" and result["machine"]["cpus"] >= 1
    saved = json.loads((tmp_path / "throughput_tiny_b4_n8.json").read_text())
    assert saved["pipeline_jobs_per_s"] == result["pipeline_jobs_per_s"] and len(saved["latencies_s"]) == 8
    assert (tmp_path / "throughput_tiny_b4_n8.png").read_bytes()[:4] == b"\x89PNG"


def test_recap_bench_api_accounts_for_every_accepted_job(pg_url, redis_url, tmp_path) -> None:
    env = os.environ | {"DATABASE_URL": pg_url, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "recap.cli", "bench-api", "--clients", "4", "--seconds", "3",
         "--baseline-seconds", "1", "--out", str(tmp_path), "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["accepted"] > 0 and result["statuses"] == {"202": result["accepted"]}
    assert result["errors"] == 0 and result["requests"] == result["accepted"]
    # Every accepted job is in the database and was taken by the ingest stage: none lost.
    assert (
        result["jobs_found"] == result["jobs_taken_by_ingest"] == result["accepted"] and result["lost"] == 0
    )
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert result["p99_over_baseline"] == pytest.approx(
        latency["p99"] / result["baseline_healthz_latency_ms"]["p99"]
    )
    assert json.loads((tmp_path / "api_load.json").read_text())["accepted"] == result["accepted"]
