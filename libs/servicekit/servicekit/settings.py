"""Settings shared by every app; each app subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KitSettings(BaseSettings):
    """What every app needs. `DATABASE_URL` is shared; the rest carries the app's prefix."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # The name the app answers to: its schema, its token audience, its event source.
    app_name: str = "app"
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/fieldforce",
        validation_alias="DATABASE_URL",
    )
    # PEM of the gateway's Ed25519 public key; services verify internal tokens with it.
    internal_token_public_key: str = Field(default="", validation_alias="INTERNAL_TOKEN_PUBLIC_KEY")
    internal_token_issuer: str = "fieldforce-gateway"
    # The engine's pool: request transactions and units of work (`Database.new_session`).
    # No overflow by default: a connection made beyond the pool is closed again on return, so
    # under sustained load every request paid for a new PostgreSQL backend; requests wait for
    # a pooled connection instead (bench/README.md, customers).
    db_pool_size: int = 10
    db_max_overflow: int = 0
    # `Database.reads()`: read-only, may lag (feeds, readiness, stats).
    read_pool_size: int = 10
    # `Database.primary()`: writes and current reads outside a request's transaction.
    primary_pool_size: int = 5
    log_level: str = "INFO"
    idempotency_ttl_hours: int = 24
    outbox_metrics_interval_seconds: float = 5.0
    # Per-request DB statement timeout, so a stuck query never pins a connection forever.
    statement_timeout_ms: int = 15000
    # The gateway's address and the API key other apps' feeds are read with
    # (`/api/v1/events/<app>`); an app that follows a feed without them says so on /readyz.
    gateway_url: str = Field(
        default="", validation_alias=AliasChoices("GATEWAY_URL", "gateway_url")
    )
    events_api_key: str = Field(
        default="", validation_alias=AliasChoices("EVENTS_API_KEY", "events_api_key")
    )
    # Calls to other apps' public APIs on a caller's behalf (`servicekit.calls`), through
    # GATEWAY_URL: how long one may take.
    gateway_call_timeout_seconds: float = 10.0
