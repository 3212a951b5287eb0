"""Who may see and change which customer. Every endpoint of the service, sub-resources
included (contacts, orders, payments, history, ledger), goes through these rules so that one
rule applies everywhere (`repository.visibility_filter` is `can_see` as SQL, for lists;
`service.get_visible_customer` / `get_changeable_customer` load a record under them):

- admin: every customer.
- manager: customers of their visible teams (their subtree), their own, and the pool.
- rep: their own customers, and the pool (to read and claim).
- integration key: every customer when it holds a customers scope (or orders:write for the
  order push), none otherwise.

A customer the caller may not see is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal
from servicekit.errors import Forbidden

READ_SCOPE = "customers:read"
WRITE_SCOPE = "customers:write"
ORDERS_WRITE_SCOPE = "orders:write"
_KEY_READ_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, ORDERS_WRITE_SCOPE})


def key_reads(principal: Principal) -> bool:
    """Does this integration key hold a scope that reads customers?"""
    return bool(principal.scopes & _KEY_READ_SCOPES)


def require_read(principal: Principal) -> None:
    """403 for a key without any customers scope (users are governed by record rules)."""
    if principal.kind == "key" and not key_reads(principal):
        raise Forbidden(f"this action needs the '{READ_SCOPE}' scope")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def can_see(principal: Principal, owner_id: uuid.UUID | None, team_id: uuid.UUID | None) -> bool:
    if principal.kind == "key":
        return key_reads(principal)
    if principal.is_admin:
        return True
    if owner_id is None:
        return principal.is_manager or principal.is_rep
    if owner_id == principal.user_id:
        return True
    return principal.is_manager and principal.sees_team(team_id)


def can_change(principal: Principal, customer: Any) -> bool:
    """May the principal change this customer's record (and its sub-resources)?

    rep: their own only (the pool is claimed, not edited); manager: their teams', their own
    and the pool; admin: all; key: with customers:write.
    """
    owner_id, team_id = customer.owner_id, customer.team_id
    if principal.kind == "key":
        return principal.has_scope(WRITE_SCOPE)
    if principal.is_admin:
        return True
    if owner_id is not None and owner_id == principal.user_id:
        return True
    if principal.is_manager:
        return owner_id is None or principal.sees_team(team_id)
    return False
