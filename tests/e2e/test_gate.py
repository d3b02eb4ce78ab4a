"""Every gate policy and the budget guard, through the real gate worker process on real Redis and PostgreSQL.

The jobs arrive at the gate with score tables drawn here (the policies' input), so the realized rates can be
checked against known distributions; the scores' computation from real generations is tested in tests/unit.
"""

import random
from decimal import Decimal

import pytest
from sqlmodel import select

from services.gate.calibration import write_gate_file
from services.gate.policies import escalates, rate_for_budget, threshold_for_rate
from shared.db.models import BudgetReservation, BudgetSpend
from shared.db.session import session_scope
from shared.stages import STAGES, Stage
from tests.factories import gating_job


def margins(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.betavariate(4, 2) for _ in range(n)]


def jobs_with(url: str, values: list[float], score: str = "mean_margin", tenant: str = "t1") -> list:
    return [gating_job(url, {score: v, "mean_entropy": 1 - v}, tenant=tenant) for v in values]


def escalated(decisions: list[dict]) -> int:
    return sum(d["decision"] != "accept" for d in decisions)


def test_fixed_threshold_on_a_high_is_unsure_score(db_url, start_gate) -> None:
    gate = start_gate(db_url, RECAP_GATE_SCORE="mean_entropy", RECAP_GATE_THRESHOLD="0.5")
    values = [0.9, 0.2, 0.6, 0.45]  # margins; entropy is 1 - margin: 0.1, 0.8, 0.4, 0.55
    decisions = gate.decide(jobs_with(db_url, values))
    assert [d["decision"] for d in decisions] == ["accept", "escalate", "accept", "escalate"]
    assert [d["status"] for d in decisions] == ["done", "escalated", "done", "escalated"]
    assert {(d["policy"], d["score_name"], d["threshold"]) for d in decisions} == {
        ("threshold", "mean_entropy", 0.5)
    }
    assert "mean_entropy 0.8000 > threshold 0.5000" in decisions[1]["reason"]


def test_target_rate_from_a_calibrated_gate_file(pg_url, start_gate, tmp_path) -> None:
    # The gate file is what `recap calibrate` writes; the worker reads it with no environment variable set.
    threshold = threshold_for_rate("mean_margin", margins(1, 400), 0.3)
    gate_file = tmp_path / "gate.json"
    write_gate_file(
        gate_file,
        {
            "gate_policy": "target_rate",
            "gate_score": "mean_margin",
            "gate_threshold": threshold,
            "gate_target_rate": 0.3,
        },
    )
    gate = start_gate(pg_url, RECAP_GATE_FILE=str(gate_file))
    values = margins(2, 200)  # fresh jobs from the same distribution
    decisions = gate.decide(jobs_with(pg_url, values))
    assert {(d["policy"], d["threshold"], d["target_rate"]) for d in decisions} == {
        ("target_rate", threshold, 0.3)
    }
    assert [d["decision"] == "escalate" for d in decisions] == [
        escalates("mean_margin", v, threshold) for v in values
    ]
    assert abs(escalated(decisions) / len(values) - 0.3) <= 0.1  # sampling error of 200 draws, ~3 sd


def test_budget_policy_escalates_the_share_the_budget_buys(pg_url, start_gate, tmp_path) -> None:
    rate = rate_for_budget(Decimal("0.006"), Decimal("0.001"), Decimal("0.02"))
    assert rate == pytest.approx(0.25)
    threshold = threshold_for_rate("mean_margin", margins(3, 400), rate)
    gate_file = tmp_path / "gate.json"
    write_gate_file(
        gate_file,
        {
            "gate_policy": "budget",
            "gate_threshold": threshold,
            "gate_budget_per_job_usd": "0.006",
            "gate_small_cost_usd": "0.001",
            "gate_large_cost_usd": "0.02",
        },
    )
    gate = start_gate(pg_url, RECAP_GATE_FILE=str(gate_file))
    decisions = gate.decide(jobs_with(pg_url, margins(4, 200)))
    assert {d["policy"] for d in decisions} == {"budget"}
    assert [d["target_rate"] for d in decisions] == pytest.approx([0.25] * 200)
    assert abs(escalated(decisions) / 200 - 0.25) <= 0.1


def test_online_mode_holds_a_25_percent_target_over_400_jobs(pg_url, start_gate) -> None:
    # Warm-up on a deliberately wrong fixed threshold (it escalates almost nothing); the running quantile and
    # its correction must still bring the realized rate to the target. The stream drifts halfway through.
    gate = start_gate(
        pg_url, RECAP_GATE_POLICY="online", RECAP_GATE_TARGET_RATE="0.25", RECAP_GATE_THRESHOLD="0.05"
    )
    rng = random.Random(5)
    values = [rng.betavariate(4, 2) for _ in range(200)] + [rng.betavariate(2, 2) for _ in range(200)]
    ids = jobs_with(pg_url, values)
    decisions = []
    for at in range(0, len(ids), 50):  # in waves, as a stream arrives, two decided at a time
        decisions += gate.decide(ids[at : at + 50])
    rate = escalated(decisions) / len(decisions)
    assert abs(rate - 0.25) <= 0.03, rate
    assert (
        sum(d["decision"] == "escalate" for d in decisions[:20]) <= 2
    )  # the warm-up used the fixed threshold
    assert all("warm-up" in d["reason"] for d in decisions[:20])
    assert all("quantile" in d["reason"] for d in decisions[40:])
    assert abs(escalated(decisions[200:]) / 200 - 0.25) <= 0.05  # after the drift too


def spend_and_reservations(url: str) -> tuple[dict[str, Decimal], dict[str, int]]:
    with session_scope(url) as session:
        spend = {s.scope: s.spent_usd for s in session.exec(select(BudgetSpend)).all()}
        rows = session.exec(select(BudgetReservation)).all()
    tenants = [r.tenant for r in rows if r.amount_usd > 0]  # refusals are kept as settled zero reservations
    assert len(rows) - len(tenants) == sum(r.settled and r.amount_usd == 0 for r in rows)
    return spend, {t: tenants.count(t) for t in set(tenants)}


def test_concurrent_escalations_never_overspend_the_global_budget(pg_url, start_gate) -> None:
    # Every job wants the large model; the period's budget pays for 10. Four processes decide at once.
    gate = start_gate(
        pg_url,
        concurrency=4,
        RECAP_GATE_THRESHOLD="2",
        RECAP_GATE_LARGE_COST_USD="0.02",
        RECAP_BUDGET_USD="0.2",
    )
    decisions = gate.decide(jobs_with(pg_url, [0.5] * 40))

    assert sum(d["status"] == "escalated" for d in decisions) == 10
    degraded = [d for d in decisions if d["status"] == "degraded"]
    assert len(degraded) == 30
    assert {(d["decision"], d["error_code"]) for d in degraded} == {("degraded", "global_budget_spent")}
    assert all("small model's summary was kept" in d["reason"] for d in degraded)
    spend, reservations = spend_and_reservations(pg_url)
    assert spend["global"] == Decimal("0.2") and reservations == {"t1": 10}


def test_a_tenant_budget_degrades_only_that_tenant(pg_url, start_gate) -> None:
    gate = start_gate(
        pg_url,
        concurrency=4,
        RECAP_GATE_THRESHOLD="2",
        RECAP_GATE_LARGE_COST_USD="0.02",
        RECAP_TENANT_BUDGET_USD="0.06",  # every tenant: 3 escalations
        RECAP_TENANT_BUDGETS_USD='{"big-co": "1"}',  # except this one
    )
    ids = jobs_with(pg_url, [0.5] * 12, tenant="small-co") + jobs_with(pg_url, [0.5] * 8, tenant="big-co")
    decisions = gate.decide(ids)

    small_co, big_co = decisions[:12], decisions[12:]
    assert sum(d["status"] == "escalated" for d in small_co) == 3
    assert {d["error_code"] for d in small_co if d["status"] == "degraded"} == {"tenant_budget_spent"}
    assert all(d["status"] == "escalated" for d in big_co)
    spend, reservations = spend_and_reservations(pg_url)
    assert reservations == {"small-co": 3, "big-co": 8}
    assert spend["tenant:small-co"] == Decimal("0.06") and spend["global"] == Decimal("0.22")


def test_recap_up_uses_what_recap_calibrate_wrote(
    start_stack, pg_url, redis_url, dev_meetings, team_dir, test_models, tmp_path
) -> None:
    import json
    import subprocess

    from tests.e2e.conftest import RECAP, stack_env
    from tests.factories import write_meeting

    overrides = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url}
    env = stack_env(tmp_path / "var", test_models, **overrides)
    data = team_dir / "data/qmsum/dev.jsonl"
    calibrated = subprocess.run(
        [*RECAP, "calibrate", "--data", str(data), "--limit", "3", "--target-rate", "0.5", "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert calibrated.returncode == 0, calibrated.stderr[-2000:]
    written = json.loads(calibrated.stdout)
    assert written["gate_file"] == str(tmp_path / "var" / "gate.json")

    stack = start_stack(**overrides)  # no gate setting in its environment: only the file
    files = [str(write_meeting(tmp_path, m)) for m in sorted(dev_meetings, key=lambda m: m["n_words"])[:2]]
    jobs = stack.json_lines("submit", *files, "--wait", "--timeout", "600", "--json")
    details = stack.json_lines("status", *(j["job_id"] for j in jobs), "--json")
    assert {(d["gate"]["policy"], d["gate"]["threshold"]) for d in details} == {
        ("target_rate", written["thresholds"]["mean_margin"])
    }


def test_worker_logs_are_json_lines_with_the_job_id(pg_url, start_gate) -> None:
    import json

    gate = start_gate(pg_url, RECAP_LOG_LEVEL="INFO", RECAP_LOG_FORMAT="json", RECAP_GATE_THRESHOLD="0.5")
    ids = jobs_with(pg_url, [0.9, 0.2, 0.6])
    gate.decide(ids)
    gate.proc.terminate()
    gate.proc.wait(timeout=30)

    lines = [line for line in gate.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, start-up warnings included
    assert records and all({"time", "level", "logger", "message", "job_id"} <= set(r) for r in records)
    # Every line about a task names its job: Celery's own "received"/"succeeded" lines included.
    about_tasks = [r for r in records if f"{STAGES[Stage.GATE].task}[" in r["message"]]
    assert len(about_tasks) >= 2 * len(ids)
    assert {r["job_id"] for r in about_tasks} == {str(i) for i in ids}
