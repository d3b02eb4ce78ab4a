"""The HTTP API page's (docs/api.md) webhook receiver, run as written (secret and port filled in): it accepts what the notify worker
signs (Standard Webhooks) and refuses a wrong secret, a changed body and a stale timestamp."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from shared.config import REPO
from shared.webhooks import sign, standard_headers
from tests.e2e.conftest import free_port

SECRET = "whsec_" + "ab" * 32


def page_receiver() -> str:
    page = (REPO / "docs" / "api.md").read_text()
    after = page.split("that verifies the signature and refuses timestamps over 5 minutes old:", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 14  # a dozen lines and the library
    return code


def test_the_page_receiver_verifies_signatures_and_refuses_stale_ones(tmp_path) -> None:
    port = free_port()
    code = (
        page_receiver().replace('"whsec_..."', repr(SECRET)).replace('("", 8000)', f'("127.0.0.1", {port})')
    )
    script = tmp_path / "receiver.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/hook"
        deadline = time.monotonic() + 10
        body = b'{"job_id": "j1", "status": "done"}'

        def post(headers: dict[str, str], content: bytes = body) -> int:
            return httpx.post(url, content=content, headers=headers, timeout=5).status_code

        while True:
            try:
                assert post(standard_headers(SECRET, "msg_j1", body)) == 204
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the page's receiver did not start"
                time.sleep(0.1)
        assert post(standard_headers("whsec_" + "cd" * 32, "msg_j1", body)) == 401  # another secret
        assert post(standard_headers(SECRET, "msg_j1", body), body + b" ") == 401  # a changed body
        stale = standard_headers(SECRET, "msg_j1", body, at=int(time.time()) - 3600)
        assert post(stale) == 401  # a replay an hour later
        assert post({"Recap-Signature": sign(SECRET, body)}) == 401  # no Standard Webhooks headers
    finally:
        proc.terminate()
        proc.wait(timeout=10)
