"""Ownership: the company owns the customer. Every change of owner — create, claim, release,
a manager's reassignment, an approved request, a bulk transfer, a deactivated user's
handover — goes through `move_customers`: one set-based statement that locks and moves the
rows, closes and opens custody-ledger periods, writes history and `customer.owner_changed`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events, repository
from customers.archive import settings as archive_settings
from customers.archive.access import can_see, require_read, require_write
from customers.archive.exceptions import AlreadyOwned, ClaimLimitReached, CustomerNotFound
from customers.archive.history import SYSTEM, Actor, as_actor, history_row, write_history
from customers.archive.models import Customer
from customers.archive.repository import ANY_OWNER
from customers.archive.schemas import (
    HandoverItem,
    HandoverQuery,
    HandoverReport,
    HandoverSummary,
)
from customers.models import directory
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.directory import USER_DEACTIVATED, USER_TEAM_CHANGED, DirectoryChange
from servicekit.errors import Conflict, Forbidden, ValidationFailed
from servicekit.pagination import PageParams


@dataclass(frozen=True, slots=True)
class Moved:
    rows: list[Any]

    @property
    def ids(self) -> list[uuid.UUID]:
        return [r.id for r in self.rows]


def ledger_row(
    customer_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    at: datetime,
    reason: str,
    kind: str,
    actor: Actor,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "owner_id": owner_id,
        "team_id": team_id,
        "started_at": at,
        "reason": reason,
        "kind": kind,
        "actor_id": actor.id,
    }


async def open_periods(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await repository.open_periods(session, rows)


async def move_customers(
    session: AsyncSession,
    actor: Actor | Principal | None,
    *,
    to_owner_id: uuid.UUID | None,
    to_team_id: uuid.UUID | None,
    reason: str,
    kind: str,
    from_owner_id: Any = ANY_OWNER,
    customer_ids: list[uuid.UUID] | None = None,
    only_live: bool = False,
    visible_to: Principal | None = None,
) -> Moved:
    """Move every customer matching the conditions to the new owner, in the caller's
    transaction. `from_owner_id=None` means "from the pool"; the condition is re-checked after
    the row lock, so of two concurrent claims of one pool customer exactly one moves it.
    `visible_to`: only customers that principal may see. Never a no-op "move" to the owner and
    team a customer already has."""
    who = as_actor(actor)
    now = utcnow()
    rows = await repository.move_owner(
        session,
        repository.OwnerMove(from_owner_id, customer_ids, only_live, visible_to),
        to_owner_id=to_owner_id,
        to_team_id=to_team_id,
        at=now,
        by=who.id,
    )
    if not rows:
        return Moved([])
    await repository.close_periods(session, [r.id for r in rows], at=now, reason=reason, by=who.id)
    await open_periods(
        session, [ledger_row(r.id, to_owner_id, to_team_id, now, reason, kind, who) for r in rows]
    )
    history = []
    changed: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    for r in rows:
        if r.old_owner_id == to_owner_id:
            # Same owner, new team (the owner moved teams): an update, not a new owner.
            diff = {"team_id": (r.old_team_id, to_team_id)}
            history.append(
                history_row(r.id, r.version, who, "team_changed", diff, comment=reason, at=now)
            )
            changed.append(
                (events.CUSTOMER_UPDATED, r.id, events.updated(r._mapping, diff, who.id))
            )
            continue
        diff = {"owner_id": (r.old_owner_id, to_owner_id), "team_id": (r.old_team_id, to_team_id)}
        history.append(
            history_row(r.id, r.version, who, "owner_changed", diff, comment=reason, at=now)
        )
        changed.append(
            (
                events.CUSTOMER_OWNER_CHANGED,
                r.id,
                events.owner_changed(
                    r._mapping, r.old_owner_id, r.old_team_id, reason, kind, who.id
                ),
            )
        )
    await write_history(session, history)
    # A request waiting for the old team's manager no longer applies: it is cancelled, not
    # carried over to the new team (its author may file it again with the new owner's team).
    by_id = {r.id: r for r in rows}
    cancelled = await repository.cancel_pending_requests(
        session,
        list(by_id),
        at=now,
        by=who.id,
        comment=f"the customer's owner or team changed: {reason}",
    )
    changed += [events.change_request_event(c, by_id[c.customer_id]) for c in cancelled]
    await events.emit_many(session, changed)
    repository.refresh_loaded(
        session, rows, ("owner_id", "team_id", "version", "updated_at", "updated_by")
    )
    return Moved(rows)


async def release(
    session: AsyncSession, principal: Principal, customer: Customer, reason: str
) -> Moved:
    """Owner or manager puts the customer back into the pool (the record loaded as changeable
    by the caller)."""
    require_write(principal)
    if customer.owner_id is None:
        raise Conflict("the customer is already in the pool")
    moved = await move_customers(
        session,
        principal,
        to_owner_id=None,
        to_team_id=None,
        reason=reason,
        kind="released",
        customer_ids=[customer.id],
        from_owner_id=customer.owner_id,
    )
    if not moved.rows:
        raise Conflict("the customer changed owner meanwhile; read it again")
    return moved


async def claim(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID, reason: str | None
) -> Moved:
    """A rep takes a pool customer, within the held and per-day limits."""
    if principal.kind != "user" or not principal.is_rep or principal.user_id is None:
        raise Forbidden("only reps claim customers from the pool")
    me = principal.user_id
    # One rep's claims take turns, so two parallel claims cannot both pass the limits.
    await repository.take_claim_turn(session, me)
    doc, _ = await archive_settings.load(session)
    limits = doc.pool
    if limits.max_customers_per_rep is not None:
        held = await repository.held_by(session, me)
        if held >= limits.max_customers_per_rep:
            raise ClaimLimitReached(
                f"you already hold {held} customers (limit {limits.max_customers_per_rep})"
            )
    if limits.claims_per_day is not None:
        today = datetime.combine(utcnow().date(), time(0), tzinfo=utcnow().tzinfo)
        claimed = await repository.claims_since(session, me, today)
        if claimed >= limits.claims_per_day:
            raise ClaimLimitReached(
                f"you claimed {claimed} customers today (limit {limits.claims_per_day})"
            )
    team_id = uuid.UUID(principal.team_id) if principal.team_id else None
    moved = await move_customers(
        session,
        principal,
        to_owner_id=me,
        to_team_id=team_id,
        reason=reason or "claimed from the pool",
        kind="claimed",
        customer_ids=[customer_id],
        from_owner_id=None,
        only_live=True,
    )
    if moved.rows:
        return moved
    row = await repository.owner_and_status(session, customer_id)
    if row is None or not can_see(principal, row.owner_id, row.team_id):
        # Another team's customer is not there for this rep, even to be told it is taken.
        raise CustomerNotFound(customer_id)
    if row.owner_id is not None:
        if row.owner_id == me:
            raise AlreadyOwned("you already own this customer")
        raise AlreadyOwned("another rep claimed this customer first")
    raise Conflict(f"a {row.status} customer cannot be claimed")


async def resolve_target(
    session: AsyncSession, principal: Principal, owner_id: uuid.UUID | None, path: str
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(owner, team) for a new owner named by a manager/admin/key; None = the pool."""
    if owner_id is None:
        return None, None
    if owner_id == principal.user_id:
        return owner_id, uuid.UUID(principal.team_id) if principal.team_id else None
    user = await directory.get_user(session, owner_id)
    if user is None:
        raise ValidationFailed.field(path, "unknown user")
    if not user.active:
        raise ValidationFailed.field(path, "the user is deactivated")
    if principal.kind == "user" and principal.is_manager and not principal.sees_team(user.team_id):
        raise ValidationFailed.field(path, "the user is not in one of your teams")
    return user.id, user.team_id


async def transfer(
    session: AsyncSession,
    principal: Principal,
    *,
    from_owner_id: uuid.UUID,
    to_owner_id: uuid.UUID | None,
    customer_ids: list[uuid.UUID] | None,
    reason: str,
) -> tuple[Moved, uuid.UUID | None]:
    """Bulk handover by a manager of both reps or an admin, all or nothing."""
    if principal.kind != "user" or not (principal.is_admin or principal.is_manager):
        raise Forbidden("only managers and admins transfer customers")
    if to_owner_id == from_owner_id:
        raise ValidationFailed.field("to_owner_id", "must differ from from_owner_id")
    visible_to = None
    if principal.is_manager:
        source = await directory.get_user(session, from_owner_id)
        if source is not None and not principal.sees_team(source.team_id):
            raise Forbidden("the rep handing over is not in one of your teams")
        # Whatever the directory says, a manager moves only customers of their teams.
        visible_to = principal
    to_owner, to_team = await resolve_target(session, principal, to_owner_id, "to_owner_id")
    wanted = None if customer_ids is None else list(dict.fromkeys(customer_ids))
    moved = await transfer_customers(
        session,
        principal,
        from_owner_id=from_owner_id,
        to_owner_id=to_owner,
        to_team_id=to_team,
        customer_ids=wanted,
        reason=reason,
        kind="transferred",
        visible_to=visible_to,
    )
    if wanted is not None and len(moved.rows) != len(wanted):
        missing = sorted(str(i) for i in set(wanted) - set(moved.ids))
        raise ValidationFailed(
            f"{len(missing)} listed customer(s) are not held by {from_owner_id} "
            "or not yours to move; nothing was moved",
            errors=[{"loc": ["customer_ids"], "msg": "not held by from_owner_id", "ids": missing}],
        )
    return moved, to_team


async def transfer_customers(
    session: AsyncSession,
    actor: Actor | Principal | None,
    *,
    from_owner_id: uuid.UUID,
    to_owner_id: uuid.UUID | None,
    to_team_id: uuid.UUID | None,
    customer_ids: list[uuid.UUID] | None,
    reason: str,
    kind: str,
    visible_to: Principal | None = None,
) -> Moved:
    """The one path of bulk handovers: the transfers endpoint and the deactivation consumer."""
    return await move_customers(
        session,
        actor,
        to_owner_id=to_owner_id,
        to_team_id=to_team_id,
        reason=reason,
        kind=kind,
        from_owner_id=from_owner_id,
        customer_ids=customer_ids,
        visible_to=visible_to,
    )


async def follow_owner_to_new_team(
    session: AsyncSession, user_id: uuid.UUID, team_id: uuid.UUID | None
) -> Moved:
    """A rep moved teams: their customers' team follows (a manager sees a team's customers)."""
    return await move_customers(
        session,
        SYSTEM,
        to_owner_id=user_id,
        to_team_id=team_id,
        reason="owner moved to another team",
        kind="team_changed",
        from_owner_id=user_id,
    )


async def hand_over_deactivated(session: AsyncSession, user_id: uuid.UUID) -> Moved:
    """A deactivated user's customers go to the pool, or to their manager by setting."""
    doc, _ = await archive_settings.load(session)
    to_owner: uuid.UUID | None = None
    to_team: uuid.UUID | None = None
    if doc.deactivated_handover == "manager":
        boss = await directory.manager_of(session, user_id)
        if boss is not None:
            to_owner, to_team = boss.id, boss.team_id
    reason = "owner deactivated: " + ("handed to their manager" if to_owner else "back to the pool")
    return await transfer_customers(
        session,
        SYSTEM,
        from_owner_id=user_id,
        to_owner_id=to_owner,
        to_team_id=to_team,
        customer_ids=None,
        reason=reason,
        kind="handover",
    )


async def on_identity_change(session: AsyncSession, change: DirectoryChange) -> None:
    """The archive's reaction to the identity feed (wired in `main.py`): a rep's customers
    follow them to another team; a deactivated user's customers are handed over."""
    user = change.user
    if user is None:
        return
    if change.type == USER_TEAM_CHANGED:
        await follow_owner_to_new_team(session, user.id, user.team_id)
    elif change.type == USER_DEACTIVATED:
        await hand_over_deactivated(session, user.id)


# --- handover reports ---------------------------------------------------------------------


async def handover_report(
    session: AsyncSession, principal: Principal, query: HandoverQuery
) -> dict[str, Any]:
    """What the owner held in the window and where each customer that left them went (the
    custody ledger, seen by rep): managers see the periods their teams held, admins and keys
    with a customers scope all of them, a rep their own."""
    require_read(principal)
    if query.from_ is not None and query.to is not None and query.to <= query.from_:
        raise ValidationFailed.field("to", "must be after from")
    teams: list[uuid.UUID] | None = None
    if principal.kind == "user" and not principal.is_admin:
        if principal.is_manager:
            teams = principal.team_uuids()
        elif query.owner_id != principal.user_id:
            raise Forbidden("a rep sees their own handover report only")
    since, until = query.from_, query.to
    rows, cursor = await repository.handover_page(
        session,
        query.owner_id,
        since=since,
        until=until,
        teams=teams,
        page=PageParams(query.limit, query.cursor),
    )
    counts = await repository.handover_summary(
        session, query.owner_id, since=since, until=until, teams=teams
    )
    items = []
    for r in rows:
        left = r.ended_at is not None and (query.to is None or r.ended_at < query.to)
        items.append(
            {
                "customer_id": r.customer_id,
                "code": r.code,
                "name": r.name,
                "region": r.region,
                "level": r.level,
                "status": r.status,
                "team_id": r.team_id,
                "held_from": r.started_at,
                "held_until": r.ended_at,
                "came_by": r.came_by,
                "left": left,
                "left_by": r.left_by,
                "reason": r.end_reason,
                "by": r.ended_by,
                "to_owner_id": r.to_owner_id,
                "to_team_id": r.to_team_id,
                "to_pool": r.ended_at is not None and r.to_owner_id is None,
            }
        )
    report = HandoverReport(
        owner_id=query.owner_id,
        from_=query.from_,
        to=query.to,
        summary=HandoverSummary(
            held=counts.held,
            left=counts.left,
            still_held=counts.kept,
            to_pool=counts.to_pool,
            to_reps=counts.left - counts.to_pool,
        ),
        items=[HandoverItem.model_validate(i) for i in items],
        next_cursor=cursor,
    )
    return report.model_dump(mode="json", by_alias=True)
