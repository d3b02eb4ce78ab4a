"""A platform integrating over HTTP, end to end: `recap up` (its API, workers, notify worker and sweeper) on the
real PostgreSQL and Redis; a tenant made with `recap tenants create`; transcripts uploaded; signed webhooks received
by a real HTTP receiver, one after a failed first attempt; the job fetched, its usage reconciled with the ledger,
its text deleted."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlmodel import select

from shared.db.models import StageRun, Transcript
from shared.db.session import session_scope
from shared.webhooks import SIGNATURE_HEADER, verify
from tests.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

VTT = b"""WEBVTT

00:00:01.000 --> 00:00:06.000
<v Priya>Thanks for joining. Today we pick the storage layout for the analytics events.

00:00:06.500 --> 00:00:12.000
<v Tom>Row tables handle the write rate, but the weekly reports take eleven minutes.

00:00:12.500 --> 00:00:18.000
<v Priya>Then we move the reports to a columnar copy and keep Postgres for writes. Tom owns the migration.
"""
TURNS = [
    {"speaker": "Ann", "text": "Budget review: travel is twelve percent over plan."},
    {"speaker": "Bo", "text": "We freeze travel until March and revisit the numbers then."},
]


def wait_ended(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "degraded", "rejected", "failed"):
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not end")


def test_a_platform_submits_over_http_and_is_called_back_signed(start_stack, pg_url, redis_url) -> None:
    stack = start_stack(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        RECAP_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on loopback
        RECAP_WEBHOOK_BACKOFF_S="0.5",
        RECAP_SWEEP_INTERVAL_S="0.5",
    )
    done = stack.recap("tenants", "create", "acme", "--json")
    assert done.returncode == 0, done.stderr
    issued = json.loads(done.stdout)
    headers = {"Authorization": f"Bearer {issued['api_key']}"}
    with (
        Receiver([503]) as receiver,
        httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as api,
    ):
        uploaded = api.post(
            "/v1/jobs",
            files={"file": ("storage.vtt", VTT, "text/vtt")},
            data={"webhook_url": f"{receiver.url}/recap", "metadata": json.dumps({"meeting": "M-7"})},
        )
        assert uploaded.status_code == 202, uploaded.text
        first = uploaded.json()
        assert first["status"] == "queued" and first["webhook"]["state"] == "pending"
        as_json = api.post(
            "/v1/jobs", json={"turns": TURNS, "length": "short", "webhook_url": f"{receiver.url}/recap"}
        )
        bad = api.post(
            "/v1/jobs", json={"turns": [{"speaker": "Ann"}], "webhook_url": f"{receiver.url}/recap"}
        )
        assert as_json.status_code == bad.status_code == 202
        ids = [first["job_id"], as_json.json()["job_id"], bad.json()["job_id"]]

        ended = {job_id: wait_ended(api, job_id) for job_id in ids}
        assert [ended[i]["status"] for i in ids[:2]] in (
            ["done", "done"],
            ["done", "degraded"],
            ["degraded", "done"],
        )
        assert all(ended[i]["summary"] and ended[i]["tier"] for i in ids[:2])
        assert ended[ids[0]]["source_format"] == "vtt" and ended[ids[0]]["metadata"] == {"meeting": "M-7"}
        assert ended[ids[2]]["status"] == "rejected" and ended[ids[2]]["error"]["code"] == "bad_json_shape"

        # One webhook per job, signed; the first POST got a 503 and was retried after its backoff.
        received = receiver.wait_for(len(ids) + 1)
        time.sleep(1.0)  # nothing more arrives: each job is delivered once
        assert len(receiver.received) == len(ids) + 1
        bodies = []
        for request in received:
            assert verify(issued["webhook_secret"], request.body, request.headers[SIGNATURE_HEADER])
            assert not verify("whsec_" + "0" * 64, request.body, request.headers[SIGNATURE_HEADER])
            bodies.append(json.loads(request.body))
        # The first POST (answered 503) was the one sent twice.
        assert sorted(b["job_id"] for b in bodies) == sorted([*ids, bodies[0]["job_id"]])
        assert {b["job_id"]: b["status"] for b in bodies} == {i: ended[i]["status"] for i in ids}
        deliveries = {}
        for job_id in ids:
            deadline = time.monotonic() + 30
            while (job := api.get(f"/v1/jobs/{job_id}").json())["webhook"]["state"] == "pending":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            deliveries[job_id] = [a["status_code"] for a in job["webhook"]["attempts"]]
            assert job["webhook"]["state"] == "delivered"
        assert sorted(deliveries.values()) == [[200], [200], [503, 200]]

        # Usage adds up to the ledger: every job's stages, by tier, and the gate's saving.
        usage = api.get("/v1/usage").json()
        jobs = [api.get(f"/v1/jobs/{i}").json() for i in ids]
        stages = [s for j in jobs for s in j["stages"]]
        assert usage["jobs"] == 3 and sum(usage["by_status"].values()) == 3
        assert usage["by_status"].get("rejected") == 1
        assert usage["cost_usd"] == pytest.approx(sum(j["cost_usd"] for j in jobs), rel=1e-6, abs=1e-9)
        for tier, names in (("small", {"small"}), ("large", {"large"}), ("cpu", {"ingest", "gate"})):
            rows = [s for s in stages if s["stage"] in names]
            got = usage["tiers"].get(tier, {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
            assert got["input_tokens"] == sum(s["input_tokens"] for s in rows)
            assert got["output_tokens"] == sum(s["output_tokens"] for s in rows)
            assert got["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in rows), rel=1e-6, abs=1e-9)
        gated = [j for j in jobs if j["gate"]]
        assert usage["gated"] == len(gated) == 2
        assert usage["escalated"] == sum(j["gate"]["decision"] == "escalate" for j in gated)
        assert usage["cost_avoided_usd"] == pytest.approx(usage["always_large_usd"] - usage["cost_usd"])
        if usage["escalated"] < 2:
            assert usage["cost_avoided_usd"] > 0  # a job kept small did not pay for the large model
        other = api.get(
            "/v1/usage", params={"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"}
        ).json()
        assert other["jobs"] == 0 and other["cost_usd"] == 0

        # DELETE erases the text and keeps the costs.
        erased = api.delete(f"/v1/jobs/{ids[0]}")
        assert erased.status_code == 200
        gone = api.get(f"/v1/jobs/{ids[0]}").json()
        assert gone["erased_at"] and gone["summary"] is None and gone["summaries"] == []
        assert gone["cost_usd"] == pytest.approx(ended[ids[0]]["cost_usd"])
        assert [s["stage"] for s in gone["stages"]] == [s["stage"] for s in ended[ids[0]]["stages"]]
    with session_scope(pg_url) as session:
        assert session.get(Transcript, uuid.UUID(ids[0])) is None
        assert session.exec(select(StageRun).where(StageRun.job_id == uuid.UUID(ids[0]))).all()
