"""The HTTP API page's (docs/api.md) API examples, run as written with bash and curl against a real `recap api` started as the page
says (RECAP_WEBHOOK_ALLOW_PRIVATE for the local receiver): the file it uploads exists and both POSTs are 202."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from shared.config import REPO

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def page_submissions() -> str:
    page = (REPO / "docs" / "api.md").read_text()
    block = page.split("\n# Submit a file (vtt, srt", 1)[1].split("```", 1)[0]
    return "# Submit a file" + block.split("\ncurl -sS $RECAP/v1/jobs/$ID", 1)[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the page's examples use curl, not installed here")
def test_the_page_submissions_run_as_written(pg_url, start_api) -> None:
    api = start_api(pg_url, RECAP_WEBHOOK_ALLOW_PRIVATE="true")
    key = api.tenant("acme")["api_key"]
    env = os.environ | {"RECAP": api.url, "KEY": key}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", page_submissions()],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    decoder, out, jobs = json.JSONDecoder(), done.stdout.strip(), []
    while out:
        job, end = decoder.raw_decode(out)
        jobs.append(job)
        out = out[end:].strip()
    assert [job["status"] for job in jobs] == ["queued", "queued"], done.stdout
    assert [job["webhook"]["url"] for job in jobs] == ["http://127.0.0.1:8000/recap"] * 2
    assert jobs[0]["source"] == "weekly-standup.txt" and jobs[0]["metadata"] == {"meeting_id": "4711"}
