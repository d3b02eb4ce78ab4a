"""Schemathesis against the running API's own /openapi.json, with a real key: generated requests for every
operation, a bounded number each; no 5xx, and every answer as the document says (status, media type, body)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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
