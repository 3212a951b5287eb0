"""Who may see and change which customer. Every endpoint of the service, sub-resources
included (contacts, orders, payments, history, ledger), goes through these three functions so
that one rule applies everywhere:

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

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.exceptions import CustomerNotFound
from customers.archive.models import CUSTOMERS, Customer
from servicekit.auth import Principal
from servicekit.errors import Forbidden

READ_SCOPE = "customers:read"
WRITE_SCOPE = "customers:write"
ORDERS_WRITE_SCOPE = "orders:write"
_KEY_READ_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, ORDERS_WRITE_SCOPE})


def _key_reads(principal: Principal) -> bool:
    return bool(principal.scopes & _KEY_READ_SCOPES)


def require_read(principal: Principal) -> None:
    """403 for a key without any customers scope (users are governed by record rules)."""
    if principal.kind == "key" and not _key_reads(principal):
        raise Forbidden(f"this action needs the '{READ_SCOPE}' scope")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def team_ids(principal: Principal) -> list[uuid.UUID]:
    """The principal's visible teams as UUIDs (anything else in the token is ignored)."""
    out = []
    for t in principal.visible_team_ids:
        try:
            out.append(uuid.UUID(t))
        except ValueError:
            continue
    return out


def can_see(principal: Principal, owner_id: uuid.UUID | None, team_id: uuid.UUID | None) -> bool:
    if principal.kind == "key":
        return _key_reads(principal)
    if principal.is_admin:
        return True
    if owner_id is None:
        return principal.is_manager or principal.is_rep
    if owner_id == principal.user_id:
        return True
    return principal.is_manager and principal.sees_team(team_id)


def visibility_filter(principal: Principal, table: sa.Table = CUSTOMERS) -> sa.ColumnElement[bool]:
    """The WHERE clause of "customers this principal may see" (for lists and joins)."""
    c = table.c
    if principal.kind == "key":
        return sa.true() if _key_reads(principal) else sa.false()
    if principal.is_admin:
        return sa.true()
    own = c.owner_id == principal.user_id if principal.user_id else sa.false()
    if principal.is_rep:
        return sa.or_(own, c.owner_id.is_(None))
    if principal.is_manager:
        teams = team_ids(principal)
        clauses = [own, c.owner_id.is_(None)]
        if teams:
            clauses.append(c.team_id.in_(teams))
        return sa.or_(*clauses)
    return sa.false()


# `visibility_filter` as a statement shape with bound parameters, for statements compiled
# once per shape and run on the direct reads: the shape names the rule, the parameters carry
# who is asking. Same rule, same results.
VisibilityShape = str  # "all" | "none" | "own_or_pool" | "own_pool_or_teams" | "teams"


def visibility_params(principal: Principal) -> tuple[VisibilityShape, dict[str, Any]]:
    if principal.kind == "key":
        return ("all" if _key_reads(principal) else "none"), {}
    if principal.is_admin:
        return "all", {}
    if principal.is_rep:
        return "own_or_pool", {"vis_me": principal.user_id}
    if principal.is_manager:
        return "own_pool_or_teams", {"vis_me": principal.user_id, "vis_teams": team_ids(principal)}
    return "none", {}


def narrow_visibility(
    shape: VisibilityShape,
    params: dict[str, Any],
    *,
    owner_id: uuid.UUID | None = None,
    pool: bool = False,
) -> tuple[VisibilityShape, dict[str, Any]]:
    """The same rule, decided ahead for a list already narrowed to one owner or to the pool.

    Without this the planner sees `(owner_id = me OR owner_id IS NULL) AND owner_id = X`,
    estimates a handful of rows, and reads and sorts every row of the owner (a rep's own list
    of 5,000 customers: ~14 ms in PostgreSQL instead of ~0.1 ms on the owner's index).
    """
    if shape not in ("own_or_pool", "own_pool_or_teams"):
        return shape, params
    if pool:
        return "all", {}  # every user sees the pool
    if owner_id is None:
        return shape, params
    if owner_id == params["vis_me"]:
        return "all", {}
    if shape == "own_or_pool":
        return "none", {}  # someone else's customers: never a rep's
    return "teams", {"vis_teams": params["vis_teams"]}


def visibility_clause(
    shape: VisibilityShape, table: sa.Table = CUSTOMERS
) -> sa.ColumnElement[bool]:
    """The WHERE clause of a shape from `visibility_params` (`vis_*` bound parameters)."""
    c = table.c
    if shape == "all":
        return sa.true()
    if shape == "none":
        return sa.false()
    if shape == "teams":
        return c.team_id == sa.func.any(sa.bindparam("vis_teams", type_=postgresql.ARRAY(sa.Uuid)))
    # A missing user id binds NULL: `owner_id = NULL` is never true, like `own` above.
    own = c.owner_id == sa.bindparam("vis_me", type_=sa.Uuid)
    if shape == "own_or_pool":
        return sa.or_(own, c.owner_id.is_(None))
    teams = sa.bindparam("vis_teams", type_=postgresql.ARRAY(sa.Uuid))
    return sa.or_(own, c.owner_id.is_(None), c.team_id == sa.func.any(teams))


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


async def get_visible_customer(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Customer:
    """The customer, or 404 when it does not exist or the principal may not see it."""
    customer = await session.get(Customer, customer_id, with_for_update=for_update)
    if customer is None or not can_see(principal, customer.owner_id, customer.team_id):
        raise CustomerNotFound(customer_id)
    return customer


async def get_changeable_customer(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> Customer:
    """Locked for the change: 404 when invisible, 403 when visible but not theirs to change."""
    customer = await get_visible_customer(session, principal, customer_id, for_update=True)
    if not can_change(principal, customer):
        raise Forbidden("you may read this customer but not change it")
    return customer
