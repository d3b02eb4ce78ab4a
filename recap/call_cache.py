"""Model calls kept on disk, so a long evaluation resumes where it stopped and a rerun makes no model call.

A call's key is the model's identity (spec, engine, weights' sha256, decoding settings), the exact prompt (the
instruction, the chunk and the chat template are all in it) and the generation settings; a change to any of them
is a miss, never a stale answer. Each call is its own file, written in one step, so a run cut off mid-meeting
keeps every call it finished. What a call cost in seconds is kept too: a replayed call costs what it cost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inference.backends import bundled
from inference.backends.base import Backend, Generation, share_seconds
from inference.backends.load import BackendSpec, source_of
from inference.stats import TokenStats
from shared.model_kinds import BackendKind

READ_CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(READ_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(spec: BackendSpec) -> str | None:
    """The sha256 of the model's weights: pinned for a bundled model, read for a file or a folder (every file,
    in name order), None for a hub id or a server's model (named only)."""
    if spec.name.startswith(bundled.PREFIX):
        return bundled.BUNDLES[spec.name.removeprefix(bundled.PREFIX)].sha256
    if spec.kind is BackendKind.OPENAI:
        return None
    path = Path(source_of(spec.name, spec.models_dir))
    if path.is_file():
        return file_sha256(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(path)}\0{file_sha256(file)}\n".encode())
        return digest.hexdigest()
    return None


def identity(spec: BackendSpec) -> dict[str, Any]:
    """What decides a model's answers, apart from the call: its name, engine, weights and decoding settings."""
    return {
        "model": spec.name,
        "backend": spec.kind.value,
        "weights_sha256": weights_sha256(spec),
        "options": spec.options.model_dump(mode="json"),
    }


@dataclass
class CallCache:
    """A cache folder, and how many calls were replayed from it (hits) or sent to the model (misses)."""

    folder: Path
    hits: int = 0
    misses: int = 0


class CachedBackend:
    """A backend whose generate() answers from the cache folder when it can and asks the model otherwise."""

    def __init__(self, inner: Backend, cache: CallCache, model: dict[str, Any]) -> None:
        self.inner = inner
        self.cache = cache
        self.model = model
        self.name, self.device, self.kind = inner.name, inner.device, inner.kind

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count(texts)

    def split(self, text: str, budget: int) -> list[str]:
        return self.inner.split(text, budget)

    def prompt(self, instruction: str, body: str, *, instruction_last: bool = False) -> str:
        return self.inner.prompt(instruction, body, instruction_last=instruction_last)

    def key(self, prompt: str, *, max_new_tokens: int, min_new_tokens: int | None, scores: bool) -> str:
        call = {
            "model": self.model,
            "prompt": prompt,
            "max_new_tokens": max_new_tokens,
            "min_new_tokens": min_new_tokens,
            "scores": scores,
        }
        return hashlib.sha256(json.dumps(call, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.cache.folder / key[:2] / f"{key}.json"

    def _read(self, key: str) -> Generation | None:
        try:
            row = json.loads(self._path(key).read_text())
            return Generation(
                text=row["text"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                stats=TokenStats(**row["stats"]),
                seconds=row["seconds"],
            )
        except (OSError, ValueError, KeyError, TypeError):  # absent, or cut off mid-write by a crash: a miss
            return None

    def _write(self, key: str, gen: Generation) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(gen)))
        tmp.replace(path)

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        scores: bool = False,
    ) -> list[Generation]:
        keys = [
            self.key(p, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, scores=scores)
            for p in prompts
        ]
        found = [self._read(k) for k in keys]
        missing = [i for i, gen in enumerate(found) if gen is None]
        self.cache.hits += len(prompts) - len(missing)
        self.cache.misses += len(missing)
        if missing:
            started = time.perf_counter()
            fresh = self.inner.generate(
                [prompts[i] for i in missing],
                max_new_tokens=max_new_tokens,
                min_new_tokens=min_new_tokens,
                scores=scores,
            )
            shares = share_seconds(fresh, time.perf_counter() - started)
            for i, gen, seconds in zip(missing, fresh, shares, strict=True):
                gen.seconds = seconds
                self._write(keys[i], gen)
                found[i] = gen
        return [gen for gen in found if gen is not None]
