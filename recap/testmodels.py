"""Random-weight models with the real architectures, for running everything offline.

Their text is meaningless; their compute, token counts (with the real tokenizer) and scores are real.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    ByT5Tokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    T5Config,
    T5ForConditionalGeneration,
)


class Shape(StrEnum):
    TINY = "tiny"
    FLAN_T5_SMALL = "flan-t5-small"
    FLAN_T5_BASE = "flan-t5-base"


@dataclass(frozen=True)
class Dims:
    d_model: int
    d_ff: int
    layers: int
    heads: int
    # The causal "large" stand-in: a Qwen2-style (Llama layout) decoder, bigger than the seq2seq one so escalation costs more.
    causal_hidden: int
    causal_layers: int
    causal_heads: int
    causal_kv_heads: int


# flan-t5-small and -base dimensions are those of the real configs (../shared/models/*/config.json).
DIMS: dict[Shape, Dims] = {
    Shape.TINY: Dims(64, 128, 2, 2, 96, 2, 4, 2),
    Shape.FLAN_T5_SMALL: Dims(512, 1024, 8, 6, 768, 8, 12, 4),
    Shape.FLAN_T5_BASE: Dims(768, 2048, 12, 12, 1024, 16, 16, 4),
}

# A ChatML-style template, so the large worker's chat path runs as it does for Qwen.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
NOTE = "Random weights with a real architecture, made by `recap models init-test`: the text it writes is noise.\n"
MIN_NEW_TOKENS = (
    16  # random weights may emit EOS at once; a floor keeps summaries non-empty and work comparable
)


def load_tokenizer(folder: Path | None) -> PreTrainedTokenizerBase:
    """The real tokenizer in `folder`, else a byte-level one that needs no files."""
    return AutoTokenizer.from_pretrained(folder) if folder else ByT5Tokenizer()


def _vocab_size(tokenizer: PreTrainedTokenizerBase) -> int:
    # T5 pads its 32,100-token vocabulary to 32,128 embedding rows; keep that real shape.
    return -(-len(tokenizer) // 128) * 128


def _invisible(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Byte-level ids that decode to nothing on their own (a lone non-ASCII byte) or to control characters:
    random weights that favour one of them would write an empty summary."""
    if not isinstance(tokenizer, ByT5Tokenizer):
        return set()
    return {tokenizer.offset + b for b in range(256) if not 0x20 <= b < 0x7F}


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    model.generation_config = GenerationConfig(
        decoder_start_token_id=getattr(model.config, "decoder_start_token_id", None),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=getattr(model.config, "bos_token_id", None),
        min_new_tokens=MIN_NEW_TOKENS,
        # Keep random weights off sentinel, padding and unused embedding rows, so their noise decodes to text.
        suppress_tokens=sorted(
            set(tokenizer.all_special_ids) - {tokenizer.eos_token_id}
            | set(range(len(tokenizer), model.config.vocab_size))
            | _invisible(tokenizer)
        ),
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "RANDOM_WEIGHTS.md").write_text(NOTE)


def build_seq2seq(dims: Dims, tokenizer: PreTrainedTokenizerBase) -> T5ForConditionalGeneration:
    config = T5Config(
        vocab_size=_vocab_size(tokenizer),
        d_model=dims.d_model,
        d_ff=dims.d_ff,
        d_kv=64 if dims.d_model >= 512 else 32,
        num_layers=dims.layers,
        num_decoder_layers=dims.layers,
        num_heads=dims.heads,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = T5ForConditionalGeneration(config)
    model.eval()
    return model


def build_causal(dims: Dims, tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    # Llama layout with QKV bias, as Qwen2 has; Qwen2's own model type would make AutoTokenizer replace ours.
    config = LlamaConfig(
        vocab_size=_vocab_size(tokenizer),
        hidden_size=dims.causal_hidden,
        intermediate_size=dims.causal_hidden * 3,
        num_hidden_layers=dims.causal_layers,
        num_attention_heads=dims.causal_heads,
        num_key_value_heads=dims.causal_kv_heads,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        attention_bias=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


def init_test_models(
    out: Path, shape: Shape = Shape.TINY, tokenizer_dir: Path | None = None, seed: int = 0
) -> tuple[Path, Path]:
    """Writes `out/small` (seq2seq) and `out/large` (causal chat LM); returns both folders."""
    torch.manual_seed(seed)
    dims = DIMS[shape]
    tokenizer = load_tokenizer(tokenizer_dir)
    small, large = out / "small", out / "large"
    _save(build_seq2seq(dims, tokenizer), tokenizer, small)
    tokenizer.chat_template = CHAT_TEMPLATE
    _save(build_causal(dims, tokenizer), tokenizer, large)
    return small, large
