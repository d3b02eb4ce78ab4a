"""What one model tier's summarizer is given (`Settings.tier`), and the per-model defaults behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.model_kinds import BackendKind, GenerationOptions
from shared.prompts import Prompts, SummaryLength

# Per-model decoding rules (RECAP_GENERATION overrides the table). Small models repeat themselves on long inputs
# without a penalty; these are customary starting values, not yet tuned on data.
DEFAULT_GENERATION: dict[str, GenerationOptions] = {
    "bundled:smollm2-135m-instruct": GenerationOptions(repetition_penalty=1.2, no_repeat_ngram_size=4),
    "bundled:qwen2.5-coder-1.5b-instruct": GenerationOptions(repetition_penalty=1.05, no_repeat_ngram_size=6),
}


# Per-model prompt styles (RECAP_PROMPTS overrides the table). SmolLM2 given the plain instructions first goes on
# with the transcript; "topics" (instruction last) scored ROUGE-L 0.147 against 0.103 on dev (docs/evaluation.md).
DEFAULT_PROMPTS: dict[str, str] = {"bundled:smollm2-135m-instruct": "topics"}


@dataclass(frozen=True)
class TierFields:
    """One tier's own settings as the environment names them (RECAP_SMALL_* or RECAP_LARGE_*)."""

    model: str
    backend: str  # auto | transformers | llamacpp | openai
    base_url: str | None
    api_key: str | None = field(repr=False)
    tokenizer: str | None
    max_input_tokens: int
    chunk_tokens: int | None
    batch_size: int


@dataclass(frozen=True)
class TierSettings:
    """What one model tier's summarizer needs, gathered from the settings by `Settings.tier`."""

    model: str
    backend: BackendKind
    window: int  # input tokens per call, instruction included
    chunk_tokens: int | None  # None: as many as the window holds
    overlap_tokens: int
    chunk_summary_tokens: int
    final_tokens: dict[SummaryLength, int]
    max_chunks: int
    batch_size: int
    min_new_tokens: int | None
    options: GenerationOptions
    prompts: Prompts
    base_url: str | None  # the openai backend's server
    api_key: str | None = field(repr=False)  # a secret: kept out of every repr and log line
    tokenizer: str | None  # the openai backend's token counter (else an estimate)
