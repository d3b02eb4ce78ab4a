"""The OpenAI-compatible backend: any server that speaks `/v1/chat/completions` (vLLM, TGI, llama.cpp, hosted).

The gate still reads the small model's own uncertainty: each call asks for `logprobs` with `top_logprobs` = 2,
and a token's margin is p1 - p2 of the two top log-probabilities. Entropy needs the whole distribution, which
no such server returns (`kinds.PROVIDES`). Tokens come from the server's `usage`. A micro-batch becomes
concurrent requests, at most `concurrency` at once; transient failures (429, 5xx, timeouts, refused connections)
are retried with exponential backoff, and a job ends `<tier>_backend_unavailable` when the retries run out.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from inference.backends.base import Generation, message
from inference.backends.processing import cut_at_stop
from inference.stats import TokenStats
from shared import deadline
from shared.backoff import doubling
from shared.errors import JobError
from shared.model_kinds import BackendKind, GenerationOptions

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BACKOFF_CAP_S = 30.0


class Counter(Protocol):
    def count(self, texts: Sequence[str]) -> list[int]: ...

    def split(self, text: str, budget: int) -> list[str]: ...


class ApproxTokens:
    """A conservative stand-in for the server's tokenizer when none is configured: one token per 3 UTF-8 bytes
    (real BPE vocabularies average about 4 on English), so chunks err on the small side of the window."""

    BYTES_PER_TOKEN = 3

    def count(self, texts: Sequence[str]) -> list[int]:
        return [math.ceil(len(t.encode()) / self.BYTES_PER_TOKEN) for t in texts]

    def split(self, text: str, budget: int) -> list[str]:
        step = max(1, budget * self.BYTES_PER_TOKEN // 4)  # in characters: up to 4 bytes each in UTF-8
        return [text[i : i + step] for i in range(0, len(text), step)]


@dataclass(frozen=True)
class ServerConfig:
    base_url: str  # up to and including /v1
    model: str  # the name the server knows the model by
    api_key: str | None
    timeout_s: float
    retries: int
    backoff_s: float
    concurrency: int
    tier: str  # names the failure code: small_backend_unavailable / large_backend_unavailable
    connect_timeout_s: float = 10.0  # a server that does not accept is retried sooner than one that is slow


def token_stats_from_logprobs(content: list[dict[str, Any]]) -> TokenStats:
    """Margins (p1 - p2) and the chosen token's log-probability from `logprobs.content` (no entropy)."""
    stats = TokenStats()
    for item in content:
        tops = sorted((float(t["logprob"]) for t in item.get("top_logprobs") or []), reverse=True)
        p1 = math.exp(tops[0]) if tops else math.exp(float(item["logprob"]))
        p2 = math.exp(tops[1]) if len(tops) > 1 else 0.0
        stats.margins.append(p1 - p2)
        stats.logprobs.append(float(item["logprob"]))
    return stats


class OpenAIBackend:
    kind = BackendKind.OPENAI
    device = "remote"

    def __init__(
        self,
        name: str,
        server: ServerConfig,
        tokens: Counter | None = None,
        options: GenerationOptions | None = None,
    ) -> None:
        self.name = name
        self.server = server
        self.tokens = tokens or ApproxTokens()
        self.options = options or GenerationOptions()
        headers = {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}
        self.http = httpx.Client(
            base_url=server.base_url.rstrip("/"), headers=headers, timeout=self._timeout(server.timeout_s)
        )

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.tokens.count(texts)

    def split(self, text: str, budget: int) -> list[str]:
        return self.tokens.split(text, budget)

    def prompt(self, instruction: str, body: str, *, instruction_last: bool = False) -> str:
        # The user message; the server applies the model's chat template.
        return message(instruction, body, instruction_last=instruction_last)

    def _body(self, prompt: str, max_new_tokens: int, scores: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.server.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_new_tokens,
            "temperature": 0,
        }
        if scores:
            body |= {"logprobs": True, "top_logprobs": 2}
        if self.options.stop:
            body["stop"] = list(self.options.stop)
        # Penalties are not in OpenAI's API; each server names its own (vLLM `repetition_penalty`, llama.cpp
        # `repeat_penalty`): they come from the model's `extra_body`.
        return body | self.options.extra_body

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(self.server.connect_timeout_s, seconds))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.server.retries + 1):
            if attempt:
                pause = doubling(self.server.backoff_s, attempt - 1, BACKOFF_CAP_S)
                time.sleep(min(pause, deadline.remaining() or pause))
            deadline.check()
            left = deadline.remaining()  # no call runs past the stage's deadline
            timeout = self.server.timeout_s if left is None else min(self.server.timeout_s, left)
            try:
                response = self.http.post("/chat/completions", json=body, timeout=self._timeout(timeout))
            except httpx.TransportError as exc:  # refused, reset, timed out: the server may come back
                deadline.check()
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUS:
                    break
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            log.warning("model server call failed (attempt %d): %s", attempt + 1, last)
        else:
            raise JobError(
                f"{self.server.tier}_backend_unavailable",
                f"the {self.server.tier} model server {self.server.base_url} did not answer after "
                f"{self.server.retries + 1} tries ({last}); the job can be submitted again",
            )
        if response.status_code >= 400:
            raise JobError(
                f"{self.server.tier}_backend_error",
                f"{self.server.base_url} refused the request (HTTP {response.status_code}): {response.text[:500]}",
            )
        return dict(response.json())

    def _one(self, prompt: str, max_new_tokens: int, scores: bool) -> Generation:
        reply = self._post(self._body(prompt, max_new_tokens, scores))
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        stats = TokenStats()
        if scores:
            content = (choice.get("logprobs") or {}).get("content")
            if content is None:
                raise JobError(
                    f"{self.server.tier}_backend_error",
                    f"{self.server.base_url} returned no logprobs; the gate needs a server that returns "
                    "`logprobs` with `top_logprobs` (vLLM, llama.cpp's server with logits_all, OpenAI)",
                )
            stats = token_stats_from_logprobs(content)
        text = cut_at_stop(choice["message"].get("content") or "", self.options.stop)[0]
        return Generation(
            text=text.strip(),
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", len(stats.margins))),
            stats=stats,
        )

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        scores: bool = False,
    ) -> list[Generation]:
        """The batch as concurrent requests (a server batches them on its side); results in prompt order."""
        del min_new_tokens  # not in the OpenAI API; the server's own defaults apply
        workers = max(1, min(self.server.concurrency, len(prompts)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda p: self._one(p, max_new_tokens, scores), prompts))
