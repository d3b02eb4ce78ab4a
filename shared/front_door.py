"""The settings of what faces the platforms: the HTTP API (services/api), tenants' keys, and webhooks
(services/notify). `Settings` inherits these fields (read as RECAP_<NAME>, like every setting)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from shared.nesting import RENDER_DEPTH


class FrontDoor(BaseSettings):
    # The HTTP API (services/api): `recap api`, and `recap up` starts it.
    api_address: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_workers: int = Field(1, ge=1)  # uvicorn processes behind the one port
    api_threads: int = Field(10, ge=1)  # per process: requests doing database or broker work at once
    # An idle keep-alive connection is closed after this; above a load balancer's idle timeout (60 s on the
    # usual ones), or a request sent as the server closes the connection fails.
    api_keep_alive_s: float = Field(75, gt=0)
    # Per tenant: requests per window (429 with Retry-After past it; counted in Redis, so every replica agrees)
    # and jobs not yet ended (429 past it).
    api_rate_limit: int = Field(600, ge=1)
    api_rate_window_s: int = Field(60, ge=1)
    api_max_in_flight: int = Field(1000, ge=1)
    api_page_max: int = Field(200, ge=1)  # GET /v1/jobs: the largest `limit`
    api_max_metadata_bytes: int = Field(16_384, ge=2)  # a job's metadata, as JSON
    api_max_json_depth: int = Field(
        32, ge=4, le=RENDER_DEPTH
    )  # objects and arrays nested in a JSON body or a metadata part
    api_auth_cache_s: float = Field(5, ge=0)  # a revoked key stops working within this long (0: at once)
    # Per client address: requests with a key that is not live, per window; past it 429 with no database lookup.
    api_bad_key_limit: int = Field(20, ge=1)
    api_bad_key_window_s: int = Field(300, ge=1)
    api_key_grace_s: float = Field(86_400, ge=0)  # `recap tenants rotate-key`: the old key works this long
    idempotency_ttl_h: float = Field(24, gt=0)  # an Idempotency-Key answers with its first job for this long
    # Signs webhooks: each tenant's webhook secret is derived from it (nothing secret is stored). None: the local
    # stack's own, generated once into <var_dir>/secret.key.
    secret_key: SecretStr | None = None
    # Webhooks (services/notify): the job object POSTed to its webhook_url when it ends, signed; failures retried
    # with exponential backoff from webhook_backoff_s (capped at webhook_backoff_max_s, with jitter) for as long
    # as webhook_retry_hours after the job ended.
    webhook_timeout_s: float = Field(10, gt=0)
    webhook_backoff_s: float = Field(10, gt=0)
    webhook_backoff_max_s: float = Field(3600, gt=0)
    webhook_retry_hours: float = Field(24, ge=0)
    # Loopback, private, link-local and metadata addresses are refused unless this is set (tests, private
    # deployments): a webhook must not become a way into our own network.
    webhook_allow_private: bool = False
