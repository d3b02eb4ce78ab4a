"""Which engine runs a model spec, and what each engine can tell the gate. Pure Python: no torch, no engine."""

from __future__ import annotations

import importlib.util
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BackendKind(StrEnum):
    TRANSFORMERS = "transformers"  # hub id, local folder or .gguf file, in-process (CPU or GPU)
    LLAMACPP = "llamacpp"  # .gguf file in-process through llama.cpp (the fast CPU engine)
    OPENAI = "openai"  # any OpenAI-compatible server: vLLM, TGI, llama.cpp's server, a hosted API


# The per-token statistics each engine gives. An OpenAI-compatible server returns only the top log-probabilities
# (`top_logprobs`), not the whole distribution: margins and the chosen token's log-probability, no entropy.
PROVIDES: dict[BackendKind, frozenset[str]] = {
    BackendKind.TRANSFORMERS: frozenset({"margins", "entropies", "logprobs"}),
    BackendKind.LLAMACPP: frozenset({"margins", "entropies", "logprobs"}),
    BackendKind.OPENAI: frozenset({"margins", "logprobs"}),
}


def is_gguf(spec: str) -> bool:
    return spec.startswith(("bundled:", "tuned:")) or spec.lower().endswith(".gguf")


def llamacpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def resolve_kind(spec: str, chosen: str, *, base_url: str | None, device: str) -> BackendKind:
    """The engine for a tier: the one chosen, else a server when a base URL is set, else by the model spec.

    A GGUF file on CPU goes to llama.cpp when it is installed (measured faster: docs/benchmarks.md); anything
    else, and GGUF on a GPU, to transformers.
    """
    if chosen != "auto":
        return BackendKind(chosen)
    if base_url:
        return BackendKind.OPENAI
    if is_gguf(spec) and not device.startswith("cuda") and llamacpp_installed():
        return BackendKind.LLAMACPP
    return BackendKind.TRANSFORMERS


class GenerationOptions(BaseModel):
    """Per-model decoding settings, applied identically by every in-process engine (inference/backends/processing.py).

    Penalties look at the tokens generated in this answer only, not at the prompt: a summary should be free to
    reuse the transcript's words, and must not loop on its own.
    """

    model_config = ConfigDict(frozen=True)

    repetition_penalty: float = Field(
        1.0, ge=1.0
    )  # CTRL-style: a generated token's logit / p (x p if negative)
    no_repeat_ngram_size: int = Field(0, ge=0)  # 0: off; n: no n-gram of the answer twice
    stop: tuple[str, ...] = ()  # the answer ends before the first of these strings
    # The openai backend: a server decodes with its own rules, set here as its own request fields (as the
    # OpenAI SDK's `extra_body`); e.g. llama.cpp's server penalizes repeats by default: {"repeat_penalty": 1.0}.
    extra_body: dict[str, Any] = {}

    def __hash__(self) -> int:  # a backend's cache key; the dict field has no hash of its own
        return hash(self.model_dump_json())
