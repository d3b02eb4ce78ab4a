"""What SREs watch, from the running local stack: Prometheus metrics over HTTP while jobs run, and Flower."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import shortest, statuses
from tests.factories import write_meeting

pytestmark = pytest.mark.e2e


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_the_jobs_while_they_run(
    start_stack, pg_url, redis_url, dev_meetings, tmp_path
) -> None:
    stack = start_stack(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        RECAP_GATE_THRESHOLD="1.01",  # every job escalates: both tiers cost something
        RECAP_SMALL_BATCH_SIZE="4",
        RECAP_BATCH_MAX_WAIT_S="1.0",
    )
    url = f"http://127.0.0.1:{stack.env['RECAP_METRICS_PORT']}/metrics"
    files = [str(write_meeting(tmp_path, m)) for m in shortest(dev_meetings, 6)]
    jobs = stack.json_lines(
        "submit", *files, "--tenant", "acme", "--json"
    )  # no --wait: scrape while they run

    busy, deadline = 0.0, time.monotonic() + 600
    while time.monotonic() < deadline:
        samples = scrape(url)
        in_flight = sum(
            value(samples, "recap_queue_depth", queue=q) for q in ("ingest", "small", "gate", "large")
        )
        busy = max(busy, in_flight + value(samples, "recap_unacked_messages"))
        if value(samples, "recap_jobs_total", status="done") == len(jobs):
            break
        time.sleep(0.5)
    assert busy > 0  # the scrapes saw work queued or in a worker's hands

    details = statuses(stack, jobs)
    assert all(d["status"] == "done" for d in details)
    assert value(samples, "recap_escalations_total") == len(jobs)
    assert value(samples, "recap_queue_depth", queue="large") == 0
    for stage in ("ingest", "small", "gate", "large"):
        assert value(samples, "recap_stage_seconds_count", stage=stage) == len(jobs)
        seconds = sum(s["seconds"] for d in details for s in d["stages"] if s["stage"] == stage)
        assert value(samples, "recap_stage_seconds_sum", stage=stage) == pytest.approx(seconds, rel=1e-6)
        assert value(samples, "recap_stage_seconds_bucket", stage=stage, le="+Inf") == len(jobs)
    for tier, stages in (("small", {"small"}), ("large", {"large"}), ("cpu", {"ingest", "gate"})):
        usd = sum(s["cost_usd"] for d in details for s in d["stages"] if s["stage"] in stages)
        assert value(samples, "recap_cost_usd_total", tenant="acme", tier=tier) == pytest.approx(
            usd, rel=1e-6
        )


def test_flower_asks_for_a_password_and_shows_job_ids_not_transcripts(
    start_stack, pg_url, redis_url, dev_meetings, tmp_path
) -> None:
    stack = start_stack(DATABASE_URL=pg_url, REDIS_URL=redis_url, RECAP_FLOWER_BASIC_AUTH="ops:test-only-pw")
    [meeting] = shortest(dev_meetings, 1)
    [job] = stack.json_lines("submit", str(write_meeting(tmp_path, meeting)), "--wait", "--json")
    base = f"http://127.0.0.1:{stack.env['RECAP_FLOWER_PORT']}"

    assert httpx.get(f"{base}/api/tasks", timeout=10).status_code == 401
    tasks, deadline = {}, time.monotonic() + 30
    while time.monotonic() < deadline and len(tasks) < 2:  # ingest and gate (batched model tasks do not show)
        tasks = httpx.get(f"{base}/api/tasks", auth=("ops", "test-only-pw"), timeout=10).json()
        time.sleep(0.5)
    assert {t["name"] for t in tasks.values()} >= {"ingest.run", "gate.run"}
    words = {w for turn in meeting["turns"] for w in turn["text"].split() if len(w) > 6}
    for task in tasks.values():
        assert task["args"] == "()" and task["kwargs"] == f"{{'job_id': '{job['job_id']}'}}"
        assert not any(w in str(task) for w in words)  # no transcript text anywhere in what Flower shows

    assert stack.stop() == 0
    assert list((tmp_path / "var").glob("flower.db*"))  # Flower's state persists across restarts
