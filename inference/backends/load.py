"""The process's backend per tier: built once, on first use (never at import, never before a fork)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from inference.backends import bundled
from inference.backends.base import Backend
from shared import tuned
from shared.config import Settings
from shared.errors import ModelLoadError
from shared.model_kinds import BackendKind, GenerationOptions
from shared.states import Tier


@dataclass(frozen=True)
class BackendSpec:
    """Everything that decides which model a tier runs, and how: the cache key of a loaded backend."""

    tier: Tier
    kind: BackendKind
    name: str
    device: str
    threads: int | None
    compile: bool
    options: GenerationOptions
    n_ctx: int  # llama.cpp's context: the window plus the longest answer
    models_dir: Path
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # a secret
    tokenizer: str | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    retries: int = 4
    backoff_s: float = 1.0
    concurrency: int = 4


def spec_for(settings: Settings, tier: Tier) -> BackendSpec:
    t = settings.tier(tier)
    return BackendSpec(
        tier=tier,
        kind=t.backend,
        name=t.model,
        device=settings.device,
        threads=settings.torch_threads,
        compile=settings.torch_compile,
        options=t.options,
        n_ctx=t.window + max(max(t.final_tokens.values()), t.chunk_summary_tokens) + 16,
        models_dir=settings.models_path,
        base_url=t.base_url,
        api_key=t.api_key,
        tokenizer=t.tokenizer,
        timeout_s=settings.backend_timeout_s,
        connect_timeout_s=settings.backend_connect_timeout_s,
        retries=settings.backend_retries,
        backoff_s=settings.backend_retry_backoff_s,
        concurrency=settings.backend_concurrency,
    )


def source_of(name: str, models_dir: Path) -> str:
    """Where a model spec's files are: a `bundled:` name becomes its installed file, a `tuned:` one its base's."""
    if name.startswith(tuned.PREFIX):
        found = _tuned(name, models_dir)
        if found.method == "full":  # the tuned model is the whole model: its own file (llama.cpp) or folder
            return str(found.gguf or found.adapter)
        return source_of(found.base, models_dir)
    if not name.startswith(bundled.PREFIX):
        return name
    try:
        return str(bundled.model_path(name, models_dir))
    except bundled.BundleError as exc:
        raise ModelLoadError("model_unavailable", str(exc)) from exc


def _tuned(name: str, models_dir: Path) -> tuned.TunedModel:
    try:
        return tuned.find(name, models_dir)
    except tuned.TunedModelMissing as exc:
        raise ModelLoadError("model_unavailable", str(exc)) from exc


def adapter_of(spec: BackendSpec) -> str | None:
    """A tuned model's adapter, in the form the spec's engine loads (None: not a tuned model)."""
    if not spec.name.startswith(tuned.PREFIX):
        return None
    found = _tuned(spec.name, spec.models_dir)
    if found.method == "full":
        return None  # nothing to apply: the source is the tuned model
    path = found.gguf if spec.kind is BackendKind.LLAMACPP else found.adapter
    if path is None:
        form = "a GGUF adapter" if spec.kind is BackendKind.LLAMACPP else "a peft adapter folder"
        raise ModelLoadError(
            "model_unavailable", f"{spec.name} in {found.folder} has no {form} for {spec.kind}"
        )
    return str(path)


@lru_cache(maxsize=4)
def load(spec: BackendSpec) -> Backend:
    if spec.kind is BackendKind.OPENAI:
        from inference.backends.openai_api import OpenAIBackend, ServerConfig

        if not spec.base_url:
            raise ModelLoadError(
                "model_unavailable",
                f"RECAP_{spec.tier.upper()}_BACKEND=openai needs RECAP_{spec.tier.upper()}_BASE_URL",
            )
        tokens = None
        if spec.tokenizer:
            from inference.backends.hf import HFTokens

            tokens = HFTokens.from_source(source_of(spec.tokenizer, spec.models_dir))
        server = ServerConfig(
            base_url=spec.base_url,
            model=spec.name,
            api_key=spec.api_key,
            timeout_s=spec.timeout_s,
            connect_timeout_s=spec.connect_timeout_s,
            retries=spec.retries,
            backoff_s=spec.backoff_s,
            concurrency=spec.concurrency,
            tier=spec.tier,
        )
        return OpenAIBackend(spec.name, server, tokens, spec.options)
    source = source_of(spec.name, spec.models_dir)
    if spec.kind is BackendKind.LLAMACPP:
        from inference.backends.llamacpp import LlamaCppBackend

        if not source.endswith(".gguf") or not os.path.isfile(source):
            raise ModelLoadError(
                "model_unavailable", f"the llamacpp backend needs a .gguf file; {spec.name!r} is not one"
            )
        return LlamaCppBackend.load(
            spec.name,
            source,
            n_ctx=spec.n_ctx,
            threads=spec.threads,
            options=spec.options,
            lora_path=adapter_of(spec),
        )
    from inference.backends.hf import TextModel

    return TextModel.load(
        spec.name,
        source=source,
        device=spec.device,
        threads=spec.threads,
        compile=spec.compile,
        options=spec.options,
        adapter=adapter_of(spec),
    )
