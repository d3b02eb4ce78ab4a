"""The API over real HTTP (`recap api` in its own process) on the real PostgreSQL and Redis: keys, isolation,
idempotency, limits, malformed requests, pagination, and acceptance while Redis is down."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from sqlalchemy import text
from sqlmodel import select

from shared.db.models import Job, Outbox, Tenant
from shared.db.session import session_scope
from tests.integration.api.helpers import TURNS, assert_problem, post_turns

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_keys_and_secrets_are_stored_only_as_hashes_and_revoked_keys_get_401(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_AUTH_CACHE_S="1")
    acme = api.tenant("acme", "--budget", "2.5")
    assert acme["api_key"].startswith("rk_") and len(acme["api_key"]) > 40
    assert acme["webhook_secret"].startswith("whsec_")
    with session_scope(pg_url) as session:
        stored = [str(v) for row in session.connection().execute(text("SELECT * FROM tenant")) for v in row]
        tenant = session.get(Tenant, "acme")
        assert tenant is not None and float(tenant.budget_usd or 0) == 2.5
        assert tenant.key_hash == hashlib.sha256(acme["api_key"].encode()).hexdigest()
    secret_parts = (acme["api_key"], acme["api_key"][10:], acme["webhook_secret"], acme["webhook_secret"][6:])
    assert not any(part in value for part in secret_parts for value in stored)
    listed = api.recap("tenants", "list", "--json")
    assert "acme" in listed.stdout and acme["api_key"] not in listed.stdout
    assert api.recap("tenants", "create", "acme").returncode == 2  # a name is created once

    with api.client(acme["api_key"]) as client:
        assert client.get("/v1/jobs").status_code == 200
        assert api.recap("tenants", "revoke", "acme").returncode == 0
        deadline = time.monotonic() + 3  # the key was cached for RECAP_API_AUTH_CACHE_S
        while (refused := client.get("/v1/jobs")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        body = assert_problem(refused, 401, "unauthorized")
        assert "Bearer" in body["detail"]
    with api.client("rk_" + "x" * 43) as stranger, api.client() as anonymous:
        assert_problem(stranger.get("/v1/jobs"), 401, "unauthorized")
        response = anonymous.post("/v1/jobs", json={"turns": TURNS})
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_tenant_sees_only_its_own_jobs(pg_url, start_api) -> None:
    api = start_api(pg_url)
    a, b = api.tenant("a")["api_key"], api.tenant("b")["api_key"]
    with api.client(a) as client_a, api.client(b) as client_b:
        created = post_turns(client_a, title="standup", metadata={"ticket": "T-1"})
        assert created.status_code == 202
        job = created.json()
        assert created.headers["location"] == f"/v1/jobs/{job['job_id']}"
        assert job["status"] == "queued" and job["tenant"] == "a" and job["metadata"] == {"ticket": "T-1"}
        assert client_a.get(f"/v1/jobs/{job['job_id']}").json()["job_id"] == job["job_id"]
        nobody = assert_problem(client_b.get(f"/v1/jobs/{uuid.uuid4()}"), 404, "job_not_found")
        theirs = assert_problem(client_b.get(f"/v1/jobs/{job['job_id']}"), 404, "job_not_found")
        assert theirs["title"] == nobody["title"]  # another tenant's job looks like no job at all
        assert_problem(client_b.delete(f"/v1/jobs/{job['job_id']}"), 404, "job_not_found")
        assert client_b.get("/v1/jobs").json()["data"] == []
        assert [j["job_id"] for j in client_a.get("/v1/jobs").json()["data"]] == [job["job_id"]]
        # A running job is not erased under its workers.
        assert_problem(client_a.delete(f"/v1/jobs/{job['job_id']}"), 409, "job_not_ended")


def test_an_idempotency_key_returns_the_first_job_and_refuses_another_body(pg_url, start_api) -> None:
    api = start_api(pg_url)
    a, b = api.tenant("a")["api_key"], api.tenant("b")["api_key"]
    with api.client(a) as client, api.client(b) as other:
        first = client.post("/v1/jobs", json={"turns": TURNS}, headers={"Idempotency-Key": "k-1"})
        again = client.post("/v1/jobs", json={"turns": TURNS}, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 202
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        changed = client.post("/v1/jobs", json={"turns": TURNS[:1]}, headers={"Idempotency-Key": "k-1"})
        assert_problem(changed, 409, "idempotency_conflict")
        theirs = other.post("/v1/jobs", json={"turns": TURNS}, headers={"Idempotency-Key": "k-1"})
        assert (
            theirs.status_code == 202 and theirs.json()["job_id"] != first.json()["job_id"]
        )  # keys are per tenant
        fresh = client.post("/v1/jobs", json={"turns": TURNS})
        assert fresh.json()["job_id"] != first.json()["job_id"]  # no key: a new job each time
    with session_scope(pg_url) as session:
        assert len(session.exec(select(Job.id).where(Job.tenant == "a")).all()) == 2


def test_the_request_rate_is_limited_per_tenant(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_RATE_LIMIT="3", RECAP_API_RATE_WINDOW_S="60")
    a, b = api.tenant("a")["api_key"], api.tenant("b")["api_key"]
    with api.client(a) as client, api.client(b) as other:
        assert [client.get("/v1/jobs").status_code for _ in range(3)] == [200, 200, 200]
        limited = client.get("/v1/jobs")
        assert_problem(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert other.get("/v1/jobs").status_code == 200  # the other tenant has its own count


def test_jobs_in_flight_are_limited_per_tenant(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_MAX_IN_FLIGHT="2")
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:  # no workers run: the jobs stay queued
        assert [post_turns(client).status_code for _ in range(2)] == [202, 202]
        refused = post_turns(client)
        assert_problem(refused, 429, "too_many_in_flight")
        assert int(refused.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8080/hook", "webhook_url_refused"),
        ("http://localhost/hook", "webhook_url_refused"),
        ("http://10.1.2.3/hook", "webhook_url_refused"),
        ("http://192.168.0.10/hook", "webhook_url_refused"),
        ("http://169.254.169.254/latest/meta-data/", "webhook_url_refused"),
        ("http://[::1]:9000/hook", "webhook_url_refused"),
        ("http://[::ffff:127.0.0.1]/hook", "webhook_url_refused"),
        ("ftp://example.com/hook", "webhook_url_invalid"),
    ],
)
def test_private_webhook_urls_are_refused(pg_url, start_api, url, code) -> None:
    api = start_api(pg_url)
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:
        body = assert_problem(post_turns(client, webhook_url=url), 422, code)
        assert "RECAP_WEBHOOK_ALLOW_PRIVATE" in body["detail"] or code == "webhook_url_invalid"
        assert client.get("/v1/jobs").json()["data"] == []


def test_malformed_requests_are_422_and_bad_transcripts_still_make_jobs(pg_url, start_api) -> None:
    api = start_api(pg_url)
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:
        assert_problem(
            client.post("/v1/jobs", content=b"hi", headers={"Content-Type": "text/plain"}),
            415,
            "unsupported_media_type",
        )
        assert_problem(
            client.post("/v1/jobs", content=b"{", headers={"Content-Type": "application/json"}),
            422,
            "invalid_request",
        )
        assert_problem(client.post("/v1/jobs", json={"title": "no turns"}), 422, "invalid_request")
        assert_problem(client.post("/v1/jobs", json={"turns": "Ann: hi"}), 422, "invalid_request")
        assert_problem(post_turns(client, length="huge"), 422, "invalid_request")
        assert_problem(
            client.post("/v1/jobs", files={"file": ("m.txt", b"Ann: hi")}, data={"metadata": "[1]"}),
            422,
            "invalid_request",
        )
        assert_problem(
            client.post("/v1/jobs", data={"length": "short"}, files={"x": ("a", b"b")}),
            422,
            "invalid_request",
        )
        assert_problem(client.get("/v1/jobs", params={"cursor": "bm9wZQ"}), 422, "invalid_cursor")
        assert_problem(client.get("/v1/jobs/not-a-uuid"), 422, "invalid_request")
        assert_problem(
            client.get("/v1/usage", params={"from": "2026-02-01", "to": "2026-01-01"}), 422, "invalid_request"
        )
        assert_problem(client.get("/v1/nothing"), 404, "not_found")
        # Well-formed requests with a transcript the ingest stage will reject: accepted, as `recap submit` does.
        bad_turns = post_turns(client, turns=[{"speaker": "Ann"}])
        empty_file = client.post("/v1/jobs", files={"file": ("empty.txt", b"")})
        assert bad_turns.status_code == empty_file.status_code == 202
        assert empty_file.json()["source"] == "empty.txt"


def test_the_job_list_pages_newest_first_without_repeats(pg_url, start_api) -> None:
    api = start_api(pg_url)
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:
        made = [post_turns(client, title=f"m{i}").json()["job_id"] for i in range(5)]
        seen, cursor, pages = [], None, 0
        while True:
            page = client.get(
                "/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += [j["job_id"] for j in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == made[::-1]
        assert [
            j["job_id"] for j in client.get("/v1/jobs", params={"status": "queued"}).json()["data"]
        ] == made[::-1]
        assert client.get("/v1/jobs", params={"status": "done"}).json()["data"] == []
        assert_problem(client.get("/v1/jobs", params={"limit": 10_000}), 422, "invalid_request")


def test_jobs_are_accepted_while_redis_is_down(pg_url, start_api) -> None:
    api = start_api(pg_url, REDIS_URL="redis://127.0.0.1:1/0")
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:
        started = time.monotonic()
        accepted = post_turns(client)
        assert accepted.status_code == 202 and time.monotonic() - started < 10
        assert client.get("/healthz").status_code == 200
        assert "redis" in assert_problem(client.get("/readyz"), 503, "not_ready")["detail"]
    with session_scope(pg_url) as session:  # its message waits in the outbox for the relay
        waiting = session.exec(
            select(Outbox.task).where(Outbox.job_id == uuid.UUID(accepted.json()["job_id"]))
        )
        assert waiting.all() == ["ingest.run"]


def test_the_formats_the_api_documents_are_the_ones_ingestion_reads() -> None:
    from services.api.schemas import MULTIPART_SCHEMA
    from services.ingest.parse import FORMATS

    assert MULTIPART_SCHEMA["properties"]["format"]["enum"] == list(FORMATS)
