"""The API against hostile requests over real HTTP (`recap api` in its own process) on the real PostgreSQL and Redis:
bodies refused before they are read, JSON too deep, oversized names and metadata; nothing stored, the connection kept."""

from __future__ import annotations

import socket
import uuid

import pytest
from sqlmodel import select

from shared.db.models import Job
from shared.db.session import session_scope
from tests.integration.api.helpers import assert_problem, post_turns

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _raw_request(port: int, head: bytes, body_parts: list[bytes]) -> tuple[bytes, int]:
    """Sends `head` and as many body parts as the server takes before it answers; (its answer, parts sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        sock.settimeout(0.2)
        answer = b""
        for part in body_parts:
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                pass
            if answer:
                break
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        sock.settimeout(10)
        while True:  # the whole answer: headers, then Content-Length bytes of body
            head, _, body = answer.partition(b"\r\n\r\n")
            length = [
                int(v)
                for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                if k.lower() == b"content-length"
            ]
            if _ and length and len(body) >= length[0]:
                return answer, sent
            chunk = sock.recv(65536)
            if not chunk:
                return answer, sent
            answer += chunk


def test_an_oversized_upload_is_refused_before_it_is_read(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_MAX_TRANSCRIPT_BYTES="2000")
    key = api.tenant("a")["api_key"]
    port = int(api.url.rsplit(":", 1)[1])
    auth = f"Authorization: Bearer {key}\r\n".encode()
    # Declared: 50 MB announced, answered at once; the client sends nothing more.
    head = b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
    answer, sent = _raw_request(port, head + b"Content-Length: 50000000\r\n\r\n", [b"x" * 1024] * 100)
    assert answer.startswith(b"HTTP/1.1 413") and b'"code":"transcript_too_large"' in answer
    assert sent <= 1  # answered at once: not even the first kilobyte was waited for
    # Streamed without a length: cut off once the bytes pass the limit, the rest never read.
    chunk = b"4000\r\n" + b"x" * 16384 + b"\r\n"  # 16 KiB each; the limit is 2,000 bytes plus 64 KiB of form
    answer, sent = _raw_request(port, head + b"Transfer-Encoding: chunked\r\n\r\n", [chunk] * 200)
    assert answer.startswith(b"HTTP/1.1 413") and b'"code":"transcript_too_large"' in answer
    assert sent < 10  # 3.2 MB offered, cut off just past 66 KB
    with api.client(key) as client:
        assert client.get("/v1/jobs").json()["data"] == []  # nothing was stored


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    "body",
    [
        '{"turns": [], "metadata": {"x": ' + _nested(900) + "}}",  # stored once, then broke every read
        '{"turns": ' + _nested(5_000) + "}",
        '{"turns": ' + _nested(100_000) + "}",  # past Python's recursion limit
        '{"turns": [], "metadata": {"x": ' + "9" * 5_000 + "}}",  # past Python's digit limit
        '{"turns": [], "metadata": {"x": NaN}}',
        '{"turns": [], "metadata": {"x": 1e400}}',  # reads as Infinity
    ],
    ids=["metadata-900-deep", "5000-deep", "100000-deep", "5000-digits", "nan", "overflow"],
)
def test_hostile_json_is_422_stores_nothing_and_keeps_the_connection(pg_url, start_api, body: str) -> None:
    api = start_api(pg_url)
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:
        headers = {"Content-Type": "application/json"}
        assert_problem(client.post("/v1/jobs", content=body, headers=headers), 422, "invalid_request")
        assert client.get("/v1/jobs").json()["data"] == []  # the same keep-alive connection still answers
    with session_scope(pg_url) as session:
        assert session.exec(select(Job)).all() == []


def test_a_metadata_part_too_deep_or_a_file_name_too_long_is_422(pg_url, start_api) -> None:
    api = start_api(pg_url)
    key = api.tenant("a")["api_key"]
    with api.client(key) as client:
        deep = '{"x": ' + _nested(40) + "}"
        response = client.post("/v1/jobs", files={"file": ("m.txt", b"Ann: hi")}, data={"metadata": deep})
        assert "RECAP_API_MAX_JSON_DEPTH" in assert_problem(response, 422, "invalid_request")["detail"]
        long_name = "m" * 600 + ".txt"
        assert_problem(
            client.post("/v1/jobs", files={"file": (long_name, b"Ann: hi")}), 422, "invalid_request"
        )
        assert (
            client.post(
                "/v1/jobs", files={"file": ("m.txt", b"Ann: hi")}, data={"metadata": '{"a": [1]}'}
            ).status_code
            == 202
        )


def test_a_row_stored_before_the_depth_check_never_breaks_its_job_or_the_listing(pg_url, start_api) -> None:
    api = start_api(pg_url)
    key = api.tenant("acme")["api_key"]
    deep: dict = {}
    node = deep
    for _ in range(900):  # what an older release stored (issue 23): past what any response can render
        node["x"] = {}
        node = node["x"]
    with api.client(key) as client:
        poisoned, fine = post_turns(client).json(), post_turns(client, metadata={"a": 1}).json()
        with session_scope(pg_url) as session:
            job = session.get(Job, uuid.UUID(poisoned["job_id"]))
            assert job is not None
            job.meta = deep
            session.add(job)
        alone = client.get(f"/v1/jobs/{poisoned['job_id']}")
        assert alone.status_code == 200 and alone.json()["metadata"] is None
        listed = client.get("/v1/jobs")
        assert listed.status_code == 200
        assert {j["job_id"]: j["metadata"] for j in listed.json()["data"]} == {
            poisoned["job_id"]: None,
            fine["job_id"]: {"a": 1},
        }
