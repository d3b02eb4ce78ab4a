"""A meeting-shaped task this CPU can learn, with exact-match answers: the gate's proof bench trains on it.

A "meeting" is a list of templated turns that set, change or drop agenda items, with chatter in between; its
"summary" is the decisions that stand at the end, in order of first mention. More turns mean more state to
track, so small models get most meetings right and bigger ones more.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import GenerationConfig, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

SPEAKERS = ["ann", "bob", "cy", "dee", "eli", "fay"]
ITEMS = ["budget", "launch", "hiring", "design", "audit", "pricing"]
VALUES = [str(v) for v in range(10)]
CHATTER = [["what", "about", "lunch"], ["sounds", "good"], ["can", "you", "hear", "me"], ["next", "slide"]]
SPECIAL = ["<pad>", "</s>", "<unk>"]
WORDS = sorted(
    {*SPEAKERS, *ITEMS, *VALUES, *(w for c in CHATTER for w in c), "set", "to", "drop", ":", ";", "."}
)


@dataclass(frozen=True)
class Example:
    meeting: str
    summary: str
    turns: int


def example(rng: random.Random, min_turns: int = 2, max_turns: int = 10) -> Example:
    decided: dict[str, str] = {}  # item -> value; insertion order is first mention
    turns = []
    for _ in range(rng.randint(min_turns, max_turns)):
        who, kind = rng.choice(SPEAKERS), rng.random()
        if kind < 0.6 or not decided:
            item, value = rng.choice(ITEMS), rng.choice(VALUES)
            turns.append(f"{who} : set {item} to {value} .")
            decided[item] = value
        elif kind < 0.78:
            item = rng.choice(list(decided))
            turns.append(f"{who} : drop {item} .")
            del decided[item]
        else:
            turns.append(f"{who} : {' '.join(rng.choice(CHATTER))} .")
    summary = " ; ".join(f"{item} {value}" for item, value in decided.items()) or "."
    return Example(" ".join(turns), summary, len(turns))


def dataset(seed: int, n: int) -> list[Example]:
    rng = random.Random(seed)
    return [example(rng) for _ in range(n)]


def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the task's closed vocabulary: nothing to download."""
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(SPECIAL + WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # T5 reads inputs that end in EOS and learns to emit it; a word-level model has no post-processor of its own.
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


@dataclass(frozen=True)
class Size:
    name: str
    d_model: int
    d_ff: int
    layers: int
    heads: int


# The same width, twice the depth: on this task depth is what tracks state, and it trains as steadily.
SMALL = Size("small", 64, 128, 2, 4)
LARGE = Size("large", 64, 128, 4, 4)


def build(size: Size, tok: PreTrainedTokenizerFast, seed: int) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tok),
        d_model=size.d_model,
        d_ff=size.d_ff,
        d_kv=size.d_model // size.heads,
        num_layers=size.layers,
        num_decoder_layers=size.layers,
        num_heads=size.heads,
        feed_forward_proj="relu",
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    model = T5ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    return model


def train(
    model: T5ForConditionalGeneration,
    tok: PreTrainedTokenizerFast,
    *,
    steps: int,
    max_seconds: float,
    seed: int,
    batch: int = 64,
    lr: float = 2e-3,
) -> dict[str, float]:
    """Trains on fresh examples (never a repeated one) for `steps` steps, or until `max_seconds` have passed.

    Counted in steps, so a busy machine makes it slower, not different.
    """
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    started, done, loss = time.perf_counter(), 0, float("nan")
    while done < steps and time.perf_counter() - started < max_seconds:
        examples = [example(rng) for _ in range(batch)]
        enc = tok([e.meeting for e in examples], return_tensors="pt", padding=True)
        labels = tok([e.summary for e in examples], return_tensors="pt", padding=True)["input_ids"]
        labels[labels == tok.pad_token_id] = -100
        for group in opt.param_groups:  # linear warm-up over the first 200 steps, then constant
            group["lr"] = lr * min(1.0, (done + 1) / 200)
        out = model(**enc, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        done, loss = done + 1, out.loss.item()
    model.eval()
    return {"seconds": time.perf_counter() - started, "steps": done, "final_loss": loss}
