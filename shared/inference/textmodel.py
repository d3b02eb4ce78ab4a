"""A generation model loaded once per process: seq2seq (FLAN-T5) or causal chat LM, on the chosen device."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from shared.errors import ModelLoadError
from shared.inference.margins import generated_mask, token_stats
from shared.scores import TokenStats

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


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    stats: TokenStats = field(default_factory=TokenStats)  # filled when generated with scores


class TextModel:
    def __init__(
        self, name: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, device: str
    ) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.is_seq2seq = bool(model.config.is_encoder_decoder)
        eos = model.generation_config.eos_token_id
        self.eos_token_ids: list[int] = eos if isinstance(eos, list) else [eos]

    @classmethod
    def load(
        cls, name: str, *, device: str = "auto", threads: int | None = None, compile: bool = False
    ) -> TextModel:
        """Loads `name` (hub id or local folder); a ModelLoadError says plainly why it could not."""
        if threads:
            torch.set_num_threads(threads)
        device = pick_device(device)
        try:
            config = AutoConfig.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
            auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            model = auto.from_pretrained(name, dtype=pick_dtype(device)).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                "model_unavailable",
                f"cannot load model {name!r} (not a local folder, not cached, or the hub is unreachable): {exc}",
            ) from exc
        # Inputs are cut to the configured window by our chunker; the tokenizer's own nominal limit
        # (512 for T5, though its relative positions read further) would only warn.
        tokenizer.model_max_length = 1 << 30
        if not config.is_encoder_decoder:
            tokenizer.padding_side = "left"  # a causal LM continues from the right end of every row
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
        if compile:
            # Shapes vary with every batch: compile for dynamic shapes rather than recompiling per shape.
            model.forward = torch.compile(model.forward, dynamic=True)
        log.info("loaded %s on %s (%s%s)", name, device, model.dtype, ", compiled" if compile else "")
        return cls(name, model, tokenizer, device)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, without special tokens (the chunking.Tokenizer protocol)."""
        if not texts:
            return []
        return [
            len(ids)
            for ids in self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        ]

    def split(self, text: str, budget: int) -> list[str]:
        """`text` cut into consecutive pieces of at most `budget` tokens."""
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return [self.tokenizer.decode(ids[i : i + budget]) for i in range(0, len(ids), budget)]

    def prompt(self, instruction: str, body: str) -> str:
        if self.is_seq2seq or not self.tokenizer.chat_template:
            return f"{instruction}\n\n{body}"
        messages = [{"role": "user", "content": f"{instruction}\n\n{body}"}]
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
        """Greedy generation for a batch; with `scores`, each row's per-token uncertainty too."""
        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=self.is_seq2seq
        ).to(self.device)
        kwargs: dict[str, object] = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1}
        floor = min_new_tokens if min_new_tokens is not None else self.model.generation_config.min_new_tokens
        if floor:
            kwargs["min_new_tokens"] = min(floor, max_new_tokens)
        out = self.model.generate(
            **enc,
            **kwargs,
            output_logits=scores,
            return_dict_in_generate=True,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        # Generated ids follow the decoder-start token (seq2seq) or the left-padded prompt (causal).
        start = 1 if self.is_seq2seq else enc["input_ids"].shape[1]
        tokens = out.sequences[:, start:].cpu()
        mask = generated_mask(tokens, self.eos_token_ids)
        stats = (
            token_stats(out.logits, tokens, self.eos_token_ids) if scores else [TokenStats() for _ in prompts]
        )
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        input_tokens = enc["attention_mask"].sum(dim=1).tolist()
        return [
            Generation(text=text.strip(), input_tokens=int(n_in), output_tokens=int(keep.sum()), stats=st)
            for text, n_in, keep, st in zip(texts, input_tokens, mask, stats, strict=True)
        ]


@lru_cache(maxsize=2)
def cached_model(
    name: str, device: str = "auto", threads: int | None = None, compile: bool = False
) -> TextModel:
    """The process's model for `name`: loaded on first use (never at import, never before a fork)."""
    return TextModel.load(name, device=device, threads=threads, compile=compile)
