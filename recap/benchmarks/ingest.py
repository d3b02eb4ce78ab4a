"""Ingestion throughput on the QMSum dev meetings: parsing alone per format, and the ingestion stage with its database.

    python -m recap.benchmarks.ingest [--runs 5] [--database-url URL] [--out bench/results/ingest.json]

Each meeting is rendered to WebVTT, SRT, text and JSON in memory (times at 150 words per minute, as the team's
formats/ files), then parsed; the stage run adds loading the raw bytes and storing the turns, as a worker does.
Reports the median over runs of transcripts per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import srt
import webvtt

from services.ingest.parse import parse_as_configured
from services.ingest.stage import ingest_job
from shared.config import get_settings
from shared.db import repository as repo
from shared.db.migrate import upgrade
from shared.db.session import session_scope


def _timed(turns: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    out, clock = [], 0.0
    for t in turns:
        if not t["text"].strip():
            continue
        seconds = max(1.0, len(t["text"].split()) * 60 / 150)
        out.append((t["speaker"], " ".join(t["text"].split()), clock, clock + seconds))
        clock += seconds
    return out


def render(meeting: dict[str, Any]) -> dict[str, bytes]:
    """The meeting in all four formats."""
    timed = _timed(meeting["turns"])
    vtt = webvtt.WebVTT(
        captions=[
            webvtt.Caption(
                _stamp(a),
                _stamp(b),
                f"<v {s}>{text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}",
            )
            for s, text, a, b in timed
        ]
    )
    subs = [
        srt.Subtitle(i + 1, timedelta(seconds=a), timedelta(seconds=b), f"{s}: {text}")
        for i, (s, text, a, b) in enumerate(timed)
    ]
    return {
        "vtt": vtt.content.encode(),
        "srt": srt.compose(subs).encode(),
        "txt": "".join(f"{s}: {text}\n" for s, text, _, _ in timed).encode(),
        "json": json.dumps(
            {"segments": [{"speaker": s, "text": t, "start": a, "end": b} for s, t, a, b in timed]}
        ).encode(),
    }


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    return (
        f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"
    )


def parse_rate(files: list[bytes], runs: int) -> list[float]:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for raw in files:
            parse_as_configured(raw)
        rates.append(len(files) / (time.perf_counter() - started))
    return rates


def stage_rate(files: list[bytes], url: str, runs: int) -> list[float]:
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    upgrade(url)
    rates = []
    for _ in range(runs):
        with session_scope(url) as session:
            ids = [repo.create_job(session, raw=raw, tenant="bench", source_name="bench").id for raw in files]
        started = time.perf_counter()
        for job_id in ids:
            assert ingest_job(job_id), f"job {job_id} was not ingested"
        rates.append(len(files) / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=get_settings().team_dir / "data/qmsum/dev.jsonl")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", help="the stage run's database (default: a fresh SQLite file)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    args = parser.parse_args()

    meetings = [json.loads(line) for line in args.data.read_text().splitlines()]
    rendered = [render(m) for m in meetings]
    words = sum(m["n_words"] for m in meetings)
    result: dict[str, Any] = {
        "benchmark": "ingestion",
        "data": str(args.data.name),
        "meetings": len(meetings),
        "words": words,
        "runs": args.runs,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "parse_transcripts_per_s": {},
    }
    for fmt in ("vtt", "srt", "txt", "json"):
        rates = parse_rate([r[fmt] for r in rendered], args.runs)
        result["parse_transcripts_per_s"][fmt] = {"median": statistics.median(rates), "runs": rates}
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        rates = stage_rate([r["vtt"] for r in rendered], url, args.runs)
    result["stage_database"] = url.split(":", 1)[0]
    result["stage_transcripts_per_s"] = {"format": "vtt", "median": statistics.median(rates), "runs": rates}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
