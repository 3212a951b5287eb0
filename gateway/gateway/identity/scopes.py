"""Scopes in one place: what each role may do, and which scopes an API key may carry.
Which endpoint needs which scope: docs/access.md."""

from __future__ import annotations

from gateway.routes import EVENT_FEEDS
from servicekit.outbox import EVENTS_SCOPE, feed_scope

# Every feed at once: the services' own key (EVENTS_API_KEY) and admins.
EVENTS_READ = EVENTS_SCOPE
# One app's feed each (`events:identity`, `events:customers`, ...): what an integration is
# given, so it reads only the feeds it follows (identity's carries people's emails).
FEED_SCOPES: frozenset[str] = frozenset(feed_scope(app) for app in EVENT_FEEDS)
# Webhook subscriptions (gateway/gateway/webhooks): they push every feed's events, so grant it
# only where events:read would be granted.
WEBHOOKS_MANAGE = "webhooks:manage"

# What the services check. Keys may carry any of these; users get theirs from the role.
BUSINESS_SCOPES: frozenset[str] = frozenset(
    {
        "customers:read",
        "customers:write",
        "orders:read",
        "orders:write",
        "products:read",
        "products:write",
        "visits:read",
        "visits:write",
        "leads:read",
        "leads:write",
        "opportunities:read",
        "opportunities:write",
        "targets:read",
        "targets:write",
        "kpis:read",
        "reports:read",
        "alerts:read",
        "alerts:write",
        "scoring:read",
        "scoring:write",
    }
)
KNOWN_SCOPES: frozenset[str] = BUSINESS_SCOPES | {EVENTS_READ, WEBHOOKS_MANAGE} | FEED_SCOPES

_FIELD_SCOPES: frozenset[str] = frozenset(
    {
        "customers:read",
        "customers:write",
        "orders:read",
        "orders:write",
        "products:read",
        "visits:read",
        "visits:write",
        "leads:read",
        "leads:write",
        "opportunities:read",
        "opportunities:write",
        "targets:read",
        "kpis:read",
        "reports:read",
        "alerts:read",
    }
)

# Managers and reps differ by what they see (teams), not by what they may do; admins may do
# everything, including following the event feeds.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": KNOWN_SCOPES,
    "manager": _FIELD_SCOPES,
    "rep": _FIELD_SCOPES,
}

USER_ROLES: tuple[str, ...] = ("admin", "manager", "rep")
KEY_ROLE = "integration"
