"""Who may see and change which subscription: admins every one; an API key with
`webhooks:manage` those it created (another's is a 404); everyone else nothing (403 naming the
scope). The same rule as SQL for lists: `repository.visibility_filter`."""

from __future__ import annotations

import uuid

from gateway.identity.scopes import WEBHOOKS_MANAGE
from gateway.webhooks.models import WebhookEndpoint
from servicekit.auth import Principal
from servicekit.errors import Forbidden


def require_manager(principal: Principal) -> None:
    """Admins hold the scope by their role; keys when it was granted to them."""
    if not principal.has_scope(WEBHOOKS_MANAGE):
        raise Forbidden(
            f"webhooks are managed by admins and keys with the '{WEBHOOKS_MANAGE}' scope"
        )


def sees_all(principal: Principal) -> bool:
    return principal.kind == "user" and principal.is_admin


def owner_key(principal: Principal) -> uuid.UUID | None:
    """The key a subscription made by `principal` belongs to (None: an admin's)."""
    return uuid.UUID(principal.sub) if principal.kind == "key" else None


def can_see(principal: Principal, endpoint: WebhookEndpoint) -> bool:
    if sees_all(principal):
        return True
    return principal.kind == "key" and endpoint.owner_key_id == owner_key(principal)
