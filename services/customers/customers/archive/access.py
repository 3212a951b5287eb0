"""Who may see and change which customer. Every endpoint of the service, sub-resources
included (contacts, orders, payments, history, ledger), goes through these rules so that one
rule applies everywhere (`repository.visibility_filter` is `can_see` as SQL, for lists;
`service.get_visible_customer` / `get_changeable_customer` load a record under them):

- admin: every customer.
- manager: customers of their visible teams (their subtree), their own, and the pool.
- rep: their own customers, and the pool (to read and claim).
- integration key: every customer when it holds a customers scope, none otherwise (403). A
  key with an orders scope finds a customer only through the lookup (`GET /lookup`: its id,
  code and references, nothing more) and reaches its orders through the commerce endpoints.

Users are governed by these record rules; integration keys by scopes, each read by the scope
of its own endpoint, and each part of a composite answer (a section of the full file or the
card, the purchase figures) by the scope of the endpoint that serves the same data on its own
(`key_may`). A write scope includes the read scope of the same area. The whole table of
scopes and endpoints: docs/access.md.

A customer the caller may not see is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from servicekit.auth import Principal, sees_customer
from servicekit.errors import Forbidden

READ_SCOPE = "customers:read"
WRITE_SCOPE = "customers:write"
ORDERS_READ_SCOPE = "orders:read"
ORDERS_WRITE_SCOPE = "orders:write"
# The scopes that may resolve a customer through the lookup (ids and references only).
LOOKUP_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, ORDERS_READ_SCOPE, ORDERS_WRITE_SCOPE})


def key_may(principal: Principal, scope: str) -> bool:
    """May the caller have what `scope` guards? Users: yes (record rules decide which
    records); integration keys: when they hold the scope, or the write scope including it."""
    return principal.kind != "key" or principal.has_scope(scope)


def key_reads(principal: Principal) -> bool:
    """Does this integration key hold a scope that reads customers?"""
    return key_may(principal, READ_SCOPE)


def require_read(principal: Principal) -> None:
    """403 for a key without a customers scope (users are governed by record rules)."""
    if not key_reads(principal):
        raise Forbidden(f"this action needs the '{READ_SCOPE}' scope")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def require_lookup(principal: Principal) -> None:
    if principal.kind == "key" and not principal.scopes & LOOKUP_SCOPES:
        raise Forbidden(
            f"a customer lookup needs one of the scopes {', '.join(sorted(LOOKUP_SCOPES))}"
        )


def require_person(principal: Principal, what: str) -> None:
    """403 for an integration key on an operation that is a person's decision."""
    if principal.kind != "user":
        raise Forbidden(f"{what} are for people, not integrations")


# Who sees a customer: one rule in the kit, shared with the apps that act on customers.
can_see = sees_customer


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
