"""The llama.cpp backend: a GGUF model in-process through llama-cpp-python, the fast engine on CPU.

Decoding is our own greedy loop over llama.cpp's logits, with the same rules as the transformers backend
(`processing.py`), so the statistics come from exactly the distribution each token was chosen from. One prompt
at a time: llama-cpp-python's high-level API holds one sequence, and on a CPU a batch buys little.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.backends.base import Generation, message
from inference.backends.processing import cut_at_stop, process_numpy, stats_numpy
from inference.stats import TokenStats
from shared import deadline
from shared.errors import ModelLoadError
from shared.model_kinds import BackendKind, GenerationOptions

log = logging.getLogger(__name__)


class LlamaCppBackend:
    kind = BackendKind.LLAMACPP
    device = "cpu"

    def __init__(self, name: str, llm: Any, options: GenerationOptions | None = None) -> None:
        from llama_cpp import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = name
        self.llm = llm
        self.options = options or GenerationOptions()
        self._lib = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_vocab = llm.n_vocab()
        # Every end-of-generation token (EOS, EOT, <|im_end|>...), found once: the vocabulary knows them.
        self.end_ids = [t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)]
        template = llm.metadata.get("tokenizer.chat_template")

        def piece(token: int) -> str:
            return str(llm.detokenize([token], special=True).decode("utf-8", errors="replace"))

        # The model's own chat template, rendered as transformers renders it.
        self.chat = (
            Jinja2ChatFormatter(template, eos_token=piece(llm.token_eos()), bos_token=piece(llm.token_bos()))
            if template
            else None
        )

    @classmethod
    def load(
        cls,
        name: str,
        path: str,
        *,
        n_ctx: int,
        threads: int | None = None,
        options: GenerationOptions | None = None,
        lora_path: str | None = None,  # a tuned model's adapter, applied to the base at load time
    ) -> LlamaCppBackend:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelLoadError(
                "model_unavailable",
                "RECAP_*_BACKEND=llamacpp needs llama-cpp-python: `make install` builds it (the `llamacpp` extra)",
            ) from exc
        try:
            llm = Llama(
                model_path=path,
                lora_path=lora_path,
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=threads or os.cpu_count(),
                logits_all=False,  # our loop reads the last position's logits only
                verbose=False,
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                "model_unavailable", f"llama.cpp cannot load {name!r} from {path}: {exc}"
            ) from exc
        log.info("loaded %s with llama.cpp (n_ctx %d)", name, n_ctx)
        return cls(name, llm, options)

    def _tokens(self, text: str, special: bool = False) -> list[int]:
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=special))

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(self._tokens(t)) for t in texts]

    def split(self, text: str, budget: int) -> list[str]:
        ids = self._tokens(text)
        return [self._text(ids[i : i + budget]) for i in range(0, len(ids), budget)]

    def _text(self, ids: list[int]) -> str:
        return str(self.llm.detokenize(ids).decode("utf-8", errors="ignore"))

    def prompt(self, instruction: str, body: str, *, instruction_last: bool = False) -> str:
        content = message(instruction, body, instruction_last=instruction_last)
        if self.chat is None:
            return content
        return str(self.chat(messages=[{"role": "user", "content": content}]).prompt)

    def _logits(self) -> np.ndarray:
        row = self._lib.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(self.n_vocab,))

    def _one(self, prompt: str, max_new_tokens: int, floor: int, scores: bool) -> Generation:
        ids = self._tokens(prompt, special=True)  # the template's own markers are special tokens
        self.llm.reset()
        self.llm.eval(ids)
        generated: list[int] = []
        stats = TokenStats()
        ended = False
        for step in range(max_new_tokens):
            deadline.check()
            logits = process_numpy(self._logits(), generated, self.options)
            if step < floor:  # min_new_tokens: no end-of-generation token yet
                logits[self.end_ids] = -np.inf
            token = int(np.argmax(logits))
            if scores:
                margin, entropy, logprob = stats_numpy(logits, token)
                stats.margins.append(margin)
                stats.entropies.append(entropy)
                stats.logprobs.append(logprob)
            if token in self.end_ids:
                ended = True
                break
            generated.append(token)
            if self.options.stop and cut_at_stop(self._text(generated), self.options.stop)[1]:
                break
            self.llm.eval([token])
        text = cut_at_stop(self._text(generated), self.options.stop)[0]
        return Generation(
            text=text.strip(), input_tokens=len(ids), output_tokens=len(generated) + int(ended), stats=stats
        )

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        scores: bool = False,
    ) -> list[Generation]:
        floor = min(min_new_tokens or 0, max_new_tokens)
        return [self._one(p, max_new_tokens, floor, scores) for p in prompts]
