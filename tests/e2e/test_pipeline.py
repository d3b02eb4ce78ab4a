"""End to end: `recap up` (four real workers, Flower), `recap submit --wait --json`, `recap status --json`."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
import redis

from shared.stages import QUEUES, STAGES, Stage
from tests.conftest import REPO
from tests.e2e.helpers import shortest, statuses, submit_meetings
from tests.factories import rows

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("threshold", "tier"), [("0", "small"), ("1.01", "large")])
def test_meetings_flow_through_all_four_workers(
    start_stack, pg_url, redis_url, dev_meetings, tmp_path, threshold, tier
) -> None:
    stack = start_stack(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        RECAP_GATE_THRESHOLD=threshold,
        RECAP_SMALL_BATCH_SIZE="4",
        RECAP_LARGE_BATCH_SIZE="4",
        RECAP_BATCH_MAX_WAIT_S="1.0",  # long enough that queued jobs gather into batches
    )
    jobs = submit_meetings(stack, tmp_path, shortest(dev_meetings, 10))

    assert len(jobs) == 10
    for job in jobs:
        assert job["status"] == "done", job
        assert job["tier"] == tier and job["summary"] and job["error"] is None
        assert job["cost_usd"] > 0
    for detail in statuses(stack, jobs):
        gate, stages = detail["gate"], {s["stage"]: s for s in detail["stages"]}
        escalated = gate["decision"] == "escalate"
        assert escalated is (gate["score"] < gate["threshold"])  # the decision agrees with the record
        assert escalated is (tier == "large")
        assert set(stages) == {"ingest", "small", "gate"} | ({"large"} if escalated else set())
        assert stages["small"]["input_tokens"] > 100 and stages["small"]["output_tokens"] > 0
        assert detail["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in stages.values()))
    model_stage = "large" if tier == "large" else "small"
    sizes = [s["batch_size"] for d in statuses(stack, jobs) for s in d["stages"] if s["stage"] == model_stage]
    assert 1 < max(sizes) <= 4  # celery-batches gathered jobs, never more than the batch size


def test_flower_shows_every_worker_and_its_queue_behind_generated_credentials(
    start_stack, pg_url, redis_url
) -> None:
    stack = start_stack(DATABASE_URL=pg_url, REDIS_URL=redis_url)  # no RECAP_FLOWER_BASIC_AUTH
    url = f"http://127.0.0.1:{stack.env['RECAP_FLOWER_PORT']}/api/workers?refresh=1"
    user, password = stack.flower_auth()
    assert user == "recap" and len(password) >= 20
    deadline, workers = time.monotonic() + 60, {}
    while time.monotonic() < deadline and len(workers) < len(QUEUES):
        try:
            workers = httpx.get(url, timeout=10, auth=(user, password)).json()
        except (httpx.HTTPError, ValueError):
            time.sleep(1)
    queues = {
        name.split("@")[0]: {q["name"] for q in info.get("active_queues", [])}
        for name, info in workers.items()
    }
    assert queues == {queue: {queue} for queue in QUEUES}  # one name per worker: node = queue
    assert httpx.get(url, timeout=10).status_code == 401  # not open, not even on loopback
    metrics = url.replace("/api/workers?refresh=1", "/metrics")
    assert httpx.get(metrics, timeout=10).status_code == 401  # Flower's own metrics too
    assert "flower_events_total" in httpx.get(metrics, timeout=10, auth=(user, password)).text
    # What every user of the machine can read: no process's command line carries the password.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "recap.flower" in ps and password not in ps


def test_duplicate_stage_messages_leave_one_set_of_rows(
    start_stack, pg_url, redis_url, dev_meetings, tmp_path
) -> None:
    stack = start_stack(DATABASE_URL=pg_url, REDIS_URL=redis_url, RECAP_GATE_THRESHOLD="1.01")
    [job] = submit_meetings(stack, tmp_path, shortest(dev_meetings, 1))
    assert job["status"] == "done"
    from uuid import UUID

    job_id = UUID(job["job_id"])
    before = rows(pg_url, job_id)

    # Deliver every stage's message again, through the broker to the real workers.
    for spec in STAGES.values():
        stack.app.send_task(spec.task, kwargs={"job_id": job["job_id"]})
    broker = redis.Redis.from_url(redis_url)

    def settled() -> bool:
        # The model stages run as celery-batches tasks, which the worker's task counters do not see: for them,
        # every queue drained and nothing left unacknowledged says the duplicates were consumed and acked.
        stats = stack.app.control.inspect(timeout=2).stats() or {}
        totals = {task: n for node in stats.values() for task, n in node.get("total", {}).items()}
        drained = not any(broker.llen(str(stage)) for stage in STAGES)
        one_job_tasks = [STAGES[stage].task for stage in (Stage.INGEST, Stage.GATE)]
        return (
            all(totals.get(task) == 2 for task in one_job_tasks) and drained and broker.hlen("unacked") == 0
        )

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not settled():
        time.sleep(0.5)
    assert settled()  # each stage's duplicate was consumed ...
    assert rows(pg_url, job_id) == before  # ... and the second run changed nothing


def test_the_embedded_defaults_need_no_servers(start_stack) -> None:
    stack = start_stack()  # no REDIS_URL: embedded Redis on a unix socket; no DATABASE_URL: SQLite
    assert stack.env["RECAP_VAR_DIR"] in stack.settings.broker_url
    jobs = stack.json_lines("submit", *map(str, sorted((REPO / "examples").iterdir())), "--wait", "--json")
    assert len(jobs) == 4 and all(j["status"] == "done" and j["summary"] for j in jobs), jobs
    assert stack.stop() == 0
    assert not (stack.settings.redis_socket).exists()  # stopped cleanly, Redis too


def test_submit_without_a_stack_says_what_to_do(tmp_path) -> None:

    env = {"PATH": "/usr/bin:/bin", "RECAP_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    meeting = tmp_path / "m.txt"
    meeting.write_text("Ann: hi\n")
    done = subprocess.run(
        [sys.executable, "-m", "recap.cli", "submit", str(meeting)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3  # unavailable: nothing was accepted, try again
    assert "recap up" in done.stdout
