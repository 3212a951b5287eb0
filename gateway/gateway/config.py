"""Fieldforce gateway settings (env prefix `GATEWAY_`; `DATABASE_URL` is shared)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    app_name: str = "gateway"

    # --- proxy: routing, internal token, limits, CORS (see gateway/gateway/proxy.py) ---
    # Base URLs of the services (fieldforce/stack.py sets them for `make run` and the tests).
    upstream_customers: str = "http://127.0.0.1:8001"
    upstream_visits: str = "http://127.0.0.1:8002"
    upstream_opportunities: str = "http://127.0.0.1:8003"
    upstream_analytics: str = "http://127.0.0.1:8004"
    # PEM of the Ed25519 key the internal tokens are signed with; empty = an ephemeral key.
    internal_token_private_key: str = ""
    internal_token_ttl_seconds: int = 60
    # A cached token is reused until this long before it expires.
    internal_token_refresh_margin_seconds: int = 15
    upstream_connect_timeout_seconds: float = 2.0
    upstream_timeout_seconds: float = 30.0
    upstream_pool_size: int = 256
    max_body_bytes: int = 10 * 1024 * 1024
    cors_origins: list[str] = []
    # Rate limits as "<requests>/<window seconds>", per role; anonymous calls count per address.
    rate_limit_enabled: bool = True
    rate_limit_admin: str = "6000/60"
    rate_limit_manager: str = "3000/60"
    rate_limit_rep: str = "1200/60"
    rate_limit_integration: str = "3000/60"
    rate_limit_anonymous: str = "120/60"
    # Per API key overrides: JSON map of key id (or key prefix) -> "<requests>/<window seconds>".
    rate_limit_keys: dict[str, str] = {}
    # How often local counts are folded into the shared counters in Postgres.
    rate_limit_sync_interval_seconds: float = 0.2
    # Merged OpenAPI: how long a service's document is kept, and how long fetching it may take.
    openapi_cache_seconds: float = 10.0
    openapi_fetch_timeout_seconds: float = 2.0
