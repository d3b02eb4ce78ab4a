"""What the API tests send and check: a small meeting as turns, and RFC 9457 problem answers."""

from __future__ import annotations

TURNS = [{"speaker": "Ann", "text": "We ship on Friday."}, {"speaker": "Bo", "text": "Only if QA passes."}]
PROBLEM = "application/problem+json"


def post_turns(client, turns=TURNS, **fields):
    return client.post("/v1/jobs", json={"turns": turns, **fields})


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    assert body["type"] == f"urn:recap:problem:{code}"
    return body
