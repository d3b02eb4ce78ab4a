"""Keys over real HTTP (`recap api` on PostgreSQL and Redis): bad keys rate-limited per address before any lookup,
rotation with a grace period, a revoked tenant's access restored; the API's docs render from local files."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.api.test_api import assert_problem

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_bad_keys_get_429_past_the_limit_per_address_before_any_lookup(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_BAD_KEY_LIMIT="5", RECAP_API_AUTH_CACHE_S="60")
    live = api.tenant("acme")["api_key"]
    with api.client(live) as client:
        assert client.get("/v1/jobs").status_code == 200  # cached from here on
    with api.client() as anonymous:
        for _ in range(10):  # no key at all: no lookup, so not counted
            assert_problem(anonymous.get("/v1/jobs"), 401, "unauthorized")
    for n in range(5):
        with api.client(f"rk_guess{n}") as guesser:
            assert_problem(guesser.get("/v1/jobs"), 401, "unauthorized")
    with api.client("rk_guess6") as guesser:
        body = assert_problem(guesser.get("/v1/jobs"), 429, "rate_limited")
        assert "RECAP_API_BAD_KEY_LIMIT" in body["detail"]
        assert 1 <= int(guesser.get("/v1/jobs").headers["retry-after"]) <= 300
    other = api.tenant("other")["api_key"]  # live but never seen: its lookup waits for the window too
    with api.client(other) as client:
        assert_problem(client.get("/v1/jobs"), 429, "rate_limited")
    with api.client(live) as client:  # a key this process already knows is not held back
        assert client.get("/v1/jobs").status_code == 200


def test_a_rotated_key_works_beside_the_old_one_until_the_grace_period_ends(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_AUTH_CACHE_S="0", RECAP_API_KEY_GRACE_S="3")
    old = api.tenant("acme")["api_key"]
    rotated = api.recap("tenants", "rotate-key", "acme", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = re.search(r'"api_key": "(rk_[^"]+)"', rotated.stdout)
    assert new is not None and new.group(1) != old
    with api.client(old) as before, api.client(new.group(1)) as after:
        assert before.get("/v1/jobs").status_code == 200  # inside the grace period
        assert after.get("/v1/jobs").status_code == 200
        deadline = time.monotonic() + 10
        while before.get("/v1/jobs").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert_problem(before.get("/v1/jobs"), 401, "unauthorized")
        assert after.get("/v1/jobs").status_code == 200
    assert api.recap("tenants", "rotate-key", "nobody").returncode == 2


def test_a_revoked_tenant_gets_its_access_back_with_a_new_key_only(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_AUTH_CACHE_S="0")
    old = api.tenant("victim")["api_key"]
    with api.client(old) as client:
        job = client.post("/v1/jobs", json={"turns": [{"speaker": "A", "text": "We ship on Friday."}]})
        assert job.status_code == 202
    assert api.recap("tenants", "revoke", "victim").returncode == 0
    again = api.recap("tenants", "create", "victim")
    assert again.returncode == 2 and "rotate-key" in again.stdout
    restored = api.recap("tenants", "rotate-key", "victim", "--json")
    found = re.search(r'"api_key": "(rk_[^"]+)"', restored.stdout)
    assert found is not None
    with api.client(old) as revoked, api.client(found.group(1)) as client:
        assert_problem(revoked.get("/v1/jobs"), 401, "unauthorized")  # no grace for a revoked key
        listed = client.get("/v1/jobs").json()  # its jobs are still its own
        assert [j["job_id"] for j in listed["data"]] == [job.json()["job_id"]]


def test_the_docs_render_from_the_api_itself_with_no_cdn(pg_url, start_api) -> None:
    api = start_api(pg_url)
    with api.client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200 and "<html" in html.text.lower()
            assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text)
            assert assets and all(a.startswith("/") for a in assets), assets  # nothing from another host
            for asset in assets:
                fetched = client.get(asset)
                assert fetched.status_code == 200 and len(fetched.content) > 10_000
