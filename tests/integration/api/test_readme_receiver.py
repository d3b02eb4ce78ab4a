"""The README's webhook receiver, run as written (secret and port filled in): it accepts a Recap signature and
refuses a wrong secret, a changed body and a stale timestamp."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from shared.config import REPO
from shared.webhooks import sign
from tests.e2e.conftest import free_port

SECRET = "whsec_" + "ab" * 32


def readme_receiver() -> str:
    readme = (REPO / "README.md").read_text()
    after = readme.split("A receiver that verifies the signature and refuses stale timestamps:", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 12  # a dozen lines, no library
    return code


def test_the_readme_receiver_verifies_signatures_and_refuses_stale_ones(tmp_path) -> None:
    port = free_port()
    code = (
        readme_receiver()
        .replace('b"whsec_..."', repr(SECRET.encode()))
        .replace('("", 8000)', f'("127.0.0.1", {port})')
    )
    script = tmp_path / "receiver.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/hook"
        deadline = time.monotonic() + 10
        body = b'{"job_id": "j1", "status": "done"}'

        def post(header: str, content: bytes = body) -> int:
            return httpx.post(
                url, content=content, headers={"Recap-Signature": header}, timeout=5
            ).status_code

        while True:
            try:
                assert post(sign(SECRET, body)) == 204
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the README's receiver did not start"
                time.sleep(0.1)
        assert post(sign("whsec_" + "cd" * 32, body)) == 401  # another secret
        assert post(sign(SECRET, body), body + b" ") == 401  # a changed body
        assert post(sign(SECRET, body, at=int(time.time()) - 3600)) == 401  # a replay an hour later
        assert post("") == 401  # no signature
    finally:
        proc.terminate()
        proc.wait(timeout=10)
