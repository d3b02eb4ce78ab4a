"""The openai backend against a real OpenAI-compatible server: llama.cpp's own (llama_cpp.server) on SmolLM2.

The server is a real process on a loopback port; the stages run as plain functions on SQLite and PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from inference.backends.openai_api import OpenAIBackend, ServerConfig
from services.small.stage import summarize_jobs
from shared.db import views
from shared.db.session import session_scope
from shared.model_kinds import GenerationOptions
from tests.e2e.conftest import free_port
from tests.factories import create_job

ALIAS = "smollm2"


class Server:
    def __init__(self, model: Path, port: int, log: Path) -> None:
        self.model, self.port, self.log = model, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", ALIAS,
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--n_threads", "2",
             "--verbose", "False"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError("llama_cpp.server did not start")

    def answered(self) -> int:
        """Chat completions the server has finished (its access log)."""
        return self.log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def server(smollm2: Path, tmp_path: Path) -> Iterator[Server]:
    running = Server(smollm2, free_port(), tmp_path / "server.log")
    running.start()
    yield running
    running.kill()


def backend(server: Server) -> OpenAIBackend:
    config = ServerConfig(
        base_url=server.url, model=ALIAS, api_key="sk-test", timeout_s=60.0, retries=3, backoff_s=0.5,
        concurrency=2, tier="small",
    )  # fmt: skip
    # llama.cpp's server penalizes repeats unless told not to; the in-process engine here does not.
    return OpenAIBackend(ALIAS, config, options=GenerationOptions(extra_body={"repeat_penalty": 1.0}))


def test_margins_from_the_server_agree_with_the_same_engine_in_process(server, smollm2_llamacpp) -> None:
    """Same file, same engine: the server's top-2 log-probabilities give the margins our own loop computes."""
    instruction, body = (
        "Summarize the following meeting transcript.",
        "Ann: we ship on Friday.\nBo: only if QA passes.",
    )
    server_backend = backend(server)
    remote = server_backend.generate(
        [server_backend.prompt(instruction, body)], max_new_tokens=24, scores=True
    )[0]
    local = smollm2_llamacpp.generate(
        [smollm2_llamacpp.prompt(instruction, body)], max_new_tokens=24, scores=True
    )[0]
    assert remote.text and remote.text == local.text
    assert remote.input_tokens == local.input_tokens  # the server applied the same chat template
    assert remote.output_tokens == len(remote.stats.margins) == local.output_tokens
    assert remote.stats.margins == pytest.approx(local.stats.margins, abs=1e-3)
    assert remote.stats.logprobs == pytest.approx(local.stats.logprobs, abs=1e-3)
    assert remote.stats.entropies == []  # not given by a server: the gate refuses entropy scores at start-up


def _small_stage(configure: Callable[..., None], db_url: str, server: Server) -> list:
    configure(
        DATABASE_URL=db_url,
        RECAP_SMALL_MODEL=ALIAS,
        RECAP_SMALL_BACKEND="openai",
        RECAP_SMALL_BASE_URL=server.url,
        RECAP_SMALL_API_KEY="sk-test",
        RECAP_BACKEND_RETRIES="4",
        RECAP_BACKEND_RETRY_BACKOFF_S="0.5",
        RECAP_BACKEND_CONCURRENCY="1",
        RECAP_SUMMARY_TOKENS_MEDIUM="48",
        RECAP_CHUNK_SUMMARY_TOKENS="48",
    )
    jobs = [
        create_job(db_url, f"Ann: item {n}, we ship on Friday.\nBo: only if QA passes.\n".encode())
        for n in range(3)
    ]
    from services.ingest.stage import ingest_job

    assert all(ingest_job(j).forward for j in jobs)
    return jobs


def _statuses(db_url: str, jobs: list) -> list[tuple[str, str | None]]:
    with session_scope(db_url) as session:
        page = views.job_views(session, job_ids=jobs)
    return [(v.status, v.error.code if v.error else None) for v in page]


def _kill_after_first_answer(server: Server, then: Callable[[], None] = lambda: None) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 120
        while server.answered() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()
        then()

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_a_server_that_dies_mid_batch_and_comes_back_is_retried(server, db_url, configure) -> None:
    jobs = _small_stage(configure, db_url, server)
    watcher = _kill_after_first_answer(server, then=lambda: (time.sleep(0.5), server.start()))
    outcome = summarize_jobs(jobs)
    watcher.join()
    assert sorted(outcome.forward) == sorted(jobs)  # every job summarized despite the restart
    assert _statuses(db_url, jobs) == [("gating", None)] * 3


def test_a_server_that_stays_down_fails_the_batch_with_a_clear_code(server, db_url, configure) -> None:
    jobs = _small_stage(configure, db_url, server)
    watcher = _kill_after_first_answer(server)
    started = time.monotonic()
    outcome = summarize_jobs(jobs)
    watcher.join()
    assert outcome.forward == [] and outcome.retry == []
    assert _statuses(db_url, jobs) == [("failed", "small_backend_unavailable")] * 3  # ended, none stuck
    assert time.monotonic() - started < 60  # 4 retries with backoff 0.5 s doubling: about 7.5 s of waiting
    with session_scope(db_url) as session:
        message = views.job_view(session, job_id=jobs[0]).error.message  # type: ignore[union-attr]
    assert server.url in message and "5 tries" in message and "sk-test" not in message
