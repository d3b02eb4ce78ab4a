"""The transformers backend: seq2seq (FLAN-T5) or causal chat LM, from a hub id, a local folder or a .gguf file."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from inference.backends.base import Generation, message
from inference.backends.processing import banned_ngram_tokens, cut_at_stop
from inference.margins import generated_mask, token_stats
from inference.stats import TokenStats
from shared import deadline
from shared.errors import ModelLoadError
from shared.model_kinds import BackendKind, GenerationOptions

log = logging.getLogger(__name__)


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def pick_dtype(device: str) -> torch.dtype:
    """fp32 on CPU; bf16 on GPUs that have it (T5 overflows in fp16), else fp16."""
    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class AnswerPenalties(LogitsProcessor):
    """Repetition penalty and n-gram ban over the answer's own tokens (inference/backends/processing.py's rules)."""

    def __init__(self, answer_start: int, options: GenerationOptions) -> None:
        self.start = answer_start  # where generated ids begin in `input_ids`
        self.options = options

    def __call__(self, input_ids: torch.LongTensor, logits: torch.FloatTensor) -> torch.FloatTensor:
        scores = cast(torch.FloatTensor, logits.clone())
        for row, ids in enumerate(input_ids[:, self.start :].tolist()):
            if self.options.repetition_penalty != 1.0 and ids:
                seen = torch.tensor(sorted(set(ids)), device=scores.device)
                vals = scores[row, seen]
                p = self.options.repetition_penalty
                scores[row, seen] = torch.where(vals > 0, vals / p, vals * p)
            if banned := banned_ngram_tokens(ids, self.options.no_repeat_ngram_size):
                scores[row, banned] = -torch.inf
        return scores


def _folder_and_file(source: str) -> tuple[str, dict[str, str]]:
    """transformers reads (and dequantizes) a GGUF file from its folder, named by `gguf_file`."""
    if source.endswith(".gguf"):
        return str(Path(source).parent), {"gguf_file": Path(source).name}
    return source, {}


class HFTokens:
    """Counting and cutting text in a transformers tokenizer's tokens (the chunking.Tokenizer protocol)."""

    tokenizer: PreTrainedTokenizerBase

    @classmethod
    def from_source(cls, source: str) -> HFTokens:
        folder, gguf = _folder_and_file(source)
        tokens = cls()
        tokens.tokenizer = AutoTokenizer.from_pretrained(folder, **gguf)
        # Inputs are cut to the configured window by our chunker; the tokenizer's own nominal limit
        # (512 for T5, though its relative positions read further) would only warn.
        tokens.tokenizer.model_max_length = 1 << 30
        return tokens

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, without special tokens."""
        if not texts:
            return []
        return [
            len(ids)
            for ids in self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        ]

    def split(self, text: str, budget: int) -> list[str]:
        """`text` cut into consecutive pieces of at most `budget` tokens."""
        ids: list[int] = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return [str(self.tokenizer.decode(ids[i : i + budget])) for i in range(0, len(ids), budget)]


def _merged(model: PreTrainedModel, adapter: str) -> PreTrainedModel:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).merge_and_unload()  # type: ignore[no-any-return]


class TextModel(HFTokens):
    kind = BackendKind.TRANSFORMERS

    def __init__(
        self,
        name: str,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device: str,
        options: GenerationOptions | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.options = options or GenerationOptions()
        self.is_seq2seq = bool(model.config.is_encoder_decoder)
        eos = model.generation_config.eos_token_id
        self.eos_token_ids: list[int] = eos if isinstance(eos, list) else [eos]

    @classmethod
    def load(
        cls,
        name: str,
        *,
        source: str | None = None,
        device: str = "auto",
        threads: int | None = None,
        compile: bool = False,
        options: GenerationOptions | None = None,
        adapter: str | None = None,  # a tuned model's peft adapter folder, merged into the base
    ) -> TextModel:
        """Loads `source` (hub id, local folder or .gguf file; default `name`); ModelLoadError says why not."""
        if threads:
            torch.set_num_threads(threads)
        device = pick_device(device)
        source = source or name
        folder, gguf = _folder_and_file(source)
        try:
            config = AutoConfig.from_pretrained(folder, **gguf)
            tokenizer = HFTokens.from_source(source).tokenizer
            auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            model = auto.from_pretrained(folder, dtype=pick_dtype(device), **gguf).to(device)  # type: ignore[arg-type]  # transformers' .to wrapper is mistyped
            if adapter:
                model = _merged(model, adapter)
            model.eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                "model_unavailable",
                f"cannot load model {name!r} (not a local folder, not cached, or the hub is unreachable): {exc}",
            ) from exc
        if not config.is_encoder_decoder:
            tokenizer.padding_side = "left"  # a causal LM continues from the right end of every row
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
        if compile:
            # Shapes vary with every batch: compile for dynamic shapes rather than recompiling per shape.
            model.forward = torch.compile(model.forward, dynamic=True)
        log.info("loaded %s on %s (%s%s)", name, device, model.dtype, ", compiled" if compile else "")
        return cls(name, model, tokenizer, device, options)

    def prompt(self, instruction: str, body: str, *, instruction_last: bool = False) -> str:
        content = message(instruction, body, instruction_last=instruction_last)
        if self.is_seq2seq or not self.tokenizer.chat_template:
            return content
        messages = [{"role": "user", "content": content}]
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    @torch.inference_mode()
    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        scores: bool = False,
    ) -> list[Generation]:
        """Greedy generation for a batch; with `scores`, each row's per-token uncertainty too.

        The statistics come from the processed scores: the distribution greedy decoding took its argmax of.
        """
        # A chat template already holds the special tokens it wants (BOS included); a seq2seq prompt needs EOS.
        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=self.is_seq2seq
        ).to(self.device)
        # Generated ids follow the decoder-start token (seq2seq) or the left-padded prompt (causal).
        start = 1 if self.is_seq2seq else enc["input_ids"].shape[1]
        kwargs: dict[str, object] = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1}
        floor = min_new_tokens if min_new_tokens is not None else self.model.generation_config.min_new_tokens
        if floor:
            kwargs["min_new_tokens"] = min(floor, max_new_tokens)
        if self.options.repetition_penalty != 1.0 or self.options.no_repeat_ngram_size:
            kwargs["logits_processor"] = LogitsProcessorList([AnswerPenalties(start, self.options)])
        if self.options.stop:
            kwargs |= {"stop_strings": list(self.options.stop), "tokenizer": self.tokenizer}
        deadline.check()
        if (left := deadline.remaining()) is not None:
            kwargs["max_time"] = left  # transformers stops generating at the stage's deadline
        generate: Any = (
            self.model.generate
        )  # transformers types it through a decorator that loses the signature
        out = generate(
            **enc,
            **kwargs,
            output_scores=scores,
            return_dict_in_generate=True,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        deadline.check()  # a generation cut by max_time is not a summary
        tokens = out.sequences[:, start:].cpu()
        # A row that ended early is padded; with a stop string it ends on padding rather than EOS.
        ends = [*self.eos_token_ids, self.tokenizer.pad_token_id]
        mask = generated_mask(tokens, ends)
        stats = token_stats(out.scores, tokens, ends) if scores else [TokenStats() for _ in prompts]
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        input_tokens = enc["attention_mask"].sum(dim=1).tolist()
        return [
            Generation(
                text=cut_at_stop(text, self.options.stop)[0].strip(),
                input_tokens=int(n_in),
                output_tokens=int(keep.sum()),
                stats=st,
            )
            for text, n_in, keep, st in zip(texts, input_tokens, mask, stats, strict=True)
        ]
