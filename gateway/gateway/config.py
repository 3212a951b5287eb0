"""Fieldforce gateway settings (env prefix `GATEWAY_`; `DATABASE_URL` is shared)."""

import json
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Any

from pydantic import AliasChoices, Field, IPvAnyNetwork, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from servicekit.settings import KitSettings


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    app_name: str = "gateway"

    # --- identity: users, teams, tokens, API keys (see gateway/gateway/identity/) ---
    # HS256 secret of the gateway's own access tokens; empty = a random one per process
    # (a warning is logged: tokens then die with the process and differ between replicas).
    jwt_secret: str = ""
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    bootstrap_admin_email: str = Field(
        default="admin@example.com",
        validation_alias=AliasChoices("BOOTSTRAP_ADMIN_EMAIL", "bootstrap_admin_email"),
    )
    # Empty = a strong password is generated and printed once, when the admin is created.
    bootstrap_admin_password: str = Field(
        default="",
        validation_alias=AliasChoices("BOOTSTRAP_ADMIN_PASSWORD", "bootstrap_admin_password"),
    )
    # The secret of the API key (scope events:read) the services follow feeds with.
    events_api_key: str = Field(
        default="", validation_alias=AliasChoices("EVENTS_API_KEY", "events_api_key")
    )
    # Argon2id cost (OWASP's minimum profile: about 50 ms per hash on a small server).
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    # Failed sign-ins (and failed current-password checks), counted inside the window: per
    # (account, client address) pair and per client address, each locked out for a while past
    # its maximum; per account only slowed, never locked (a lock would let anyone keep anyone
    # out): past `slowdown_after` failures from all addresses, each attempt on the account
    # waits base * 2^(failures - slowdown_after) seconds, at most `slowdown_max`.
    login_failure_window_seconds: int = 900
    login_max_failures_per_pair: int = 5
    login_max_failures_per_address: int = 30
    login_lockout_seconds: int = 300
    login_slowdown_after: int = 3
    login_slowdown_base_seconds: float = 0.25
    login_slowdown_max_seconds: float = 2.0
    # Identity facts (active flag, role, teams, keys) are cached this long; changes reach every
    # replica at once through LISTEN/NOTIFY, the TTL only bounds a lost notification.
    identity_cache_ttl_seconds: float = 30.0
    api_key_last_used_flush_seconds: float = 5.0

    # --- the edge: routing, internal token, limits, CORS (see gateway/gateway/edge.py) ---
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
    # The proxies (addresses or CIDR networks) whose X-Forwarded-For names the client: a JSON
    # list or comma-separated. Empty: the TCP peer is the client, whatever it sends (see
    # gateway/gateway/clientaddr.py).
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = []
    # Calls a service makes on a caller's behalf (`servicekit.calls`) present the internal
    # token the service was given (X-Internal-Token); they are taken only from these networks,
    # where the services run (the client address as `trusted_proxies` resolves it). Default:
    # loopback and the private ranges. Empty: no delegated calls at all.
    delegation_networks: Annotated[list[IPvAnyNetwork], NoDecode] = [
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
        IPv4Network("10.0.0.0/8"),
        IPv4Network("172.16.0.0/12"),
        IPv4Network("192.168.0.0/16"),
        IPv6Network("fc00::/7"),
    ]
    # Rate limits as "<requests>/<window seconds>", per role; anonymous calls count per address.
    rate_limit_enabled: bool = True
    rate_limit_admin: str = "6000/60"
    rate_limit_manager: str = "3000/60"
    rate_limit_rep: str = "1200/60"
    rate_limit_integration: str = "3000/60"
    rate_limit_anonymous: str = "120/60"
    # Per API key overrides: JSON map of key id (or key prefix) -> "<requests>/<window seconds>".
    rate_limit_keys: dict[str, str] = {}
    # How often local counts are folded into the shared counters (Postgres, or Redis).
    rate_limit_sync_interval_seconds: float = 0.2
    # When set, the shared counters live in this Redis instead of Postgres.
    redis_url: str = Field(
        default="", validation_alias=AliasChoices("REDIS_URL", "GATEWAY_REDIS_URL", "redis_url")
    )
    # Merged OpenAPI: how long a service's document is kept, and how long fetching it may take.
    openapi_cache_seconds: float = 10.0
    openapi_fetch_timeout_seconds: float = 5.0

    @field_validator("trusted_proxies", "delegation_networks", mode="before")
    @classmethod
    def _address_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
