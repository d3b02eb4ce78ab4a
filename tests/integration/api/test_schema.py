"""Schemathesis against the running API's own /openapi.json, with a real key: generated requests for every
operation, a bounded number each; no 5xx, and every answer as the document says (status, media type, body)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EXAMPLES = 60  # per operation: bounded, the suite runs it on every CI run
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_api_answers_as_its_openapi_document_says(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_RATE_LIMIT="100000")
    headers = {"Authorization": f"Bearer {api.tenant('fuzz')['api_key']}"}
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/jobs",
        "GET /v1/jobs",
        "GET /v1/jobs/{job_id}",
        "DELETE /v1/jobs/{job_id}",
        "GET /v1/usage",
        "GET /healthz",
        "GET /readyz",
    }
    calls: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same examples on every run
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            response = case.call(base_url=api.url, headers=headers)
            calls.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        conforms()
    assert api.proc.poll() is None  # the server is still up
    assert 202 in calls["POST /v1/jobs"]  # generated bodies got through, not only refusals
    assert 200 in calls["GET /v1/jobs"]


PLACEHOLDER = "__hostile__"
# JSON that Python reads but PostgreSQL, our responses or our stack cannot hold: non-finite and huge numbers,
# nesting past any limit, a lone surrogate.
HOSTILE = [
    "NaN",
    "-Infinity",
    "1e400",
    "9" * 5000,
    "1" + "0" * 400,
    "[" * 5000 + "]" * 5000,
    '{"a":' * 300 + "1" + "}" * 300,
    '"\\ud800"',
]
WHERE = [
    ("metadata",),
    ("metadata", "k"),
    ("turns", 0, "start"),
    ("turns", 0, "text"),
    ("title",),
    ("length",),
]


def poisoned(body: Any, where: tuple[str | int, ...], fragment: str) -> bytes:
    """The generated `body` with the value at `where` replaced by the raw JSON `fragment`."""
    body = body if isinstance(body, dict) else {}
    if where[0] == "turns":
        turns = body.get("turns")
        if not (isinstance(turns, list) and turns and isinstance(turns[0], dict)):
            turns = body["turns"] = [{"speaker": "Ann", "text": "We ship on Friday."}]
        turns[0][where[2]] = PLACEHOLDER
    else:
        body[where[0]] = {where[1]: PLACEHOLDER} if len(where) == 2 else PLACEHOLDER
    return json.dumps(body).replace(json.dumps(PLACEHOLDER), fragment).encode()


def test_deep_huge_and_non_finite_values_anywhere_in_a_job_are_never_a_5xx(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_API_RATE_LIMIT="100000")
    headers = {"Authorization": f"Bearer {api.tenant('fuzz')['api_key']}", "Content-Type": "application/json"}
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    [post] = [r.ok() for r in schema.get_all_operations() if r.ok().label == "POST /v1/jobs"]
    statuses: set[int] = set()
    with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:

        @given(
            case=post.as_strategy(media_type="application/json"),
            where=st.sampled_from(WHERE),
            fragment=st.sampled_from(HOSTILE),
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def survives(case: schemathesis.Case, where: tuple[str | int, ...], fragment: str) -> None:
            response = client.post("/v1/jobs", content=poisoned(case.body, where, fragment))
            statuses.add(response.status_code)
            assert response.status_code < 500, response.text
            if response.status_code == 202:  # whatever was stored renders, alone and in the listing
                assert client.get(f"/v1/jobs/{response.json()['job_id']}").status_code == 200

        survives()
        assert client.get("/v1/jobs?limit=200").status_code == 200
    assert api.proc.poll() is None
    assert 422 in statuses
