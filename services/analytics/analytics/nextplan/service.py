"""The closed loop (plan → visit → report → KPI → alert → next plan): suggestions for a rep's
next visit plan, each with its reasons and the ids that link back, and the body that creates
the plan in the visits service in one call (`POST /api/v1/visit-plans`, as the rep).

Where the suggestions come from:
- the live alerts on the rep's customers (churn risk, an A-level customer's incomplete data),
  from this app's alerts;
- the rep's open opportunities whose next action is due by the day, from this app's read
  model of the opportunities feed;
- the follow-up due list, asked of the visits service through the gateway on the caller's
  behalf (`visits_api`). It is not derived here: the list is the visits service's rule over
  the customers service's cadences per level (its settings, which this app does not follow),
  and the last effective contact that the visits service keeps; computing it again here would
  be a second copy of that rule drifting from the first. The visits service also applies its
  own rule of who may see which rep's list.

A customer suggested for several reasons is one item with all of them; items are ordered by
their strongest reason (alerts, due next actions, follow-ups in the visits list's order) and
get consecutive slots from the start of the working day.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts import repository as alerts
from analytics.kpis.measures import Context
from analytics.nextplan import repository, visits_api
from analytics.nextplan.schemas import NextPlanQuery, ReasonKind
from servicekit.auth import Principal
from servicekit.calls import CallerCalls
from servicekit.errors import Forbidden, NotFound

# The working day the slots fill (company time), and the longest slot.
DAY_STARTS = timedelta(hours=9)
DAY_LENGTH = timedelta(hours=9)
LONGEST_SLOT = timedelta(hours=1)
# What a visit for a reason is for (the visits service's purposes).
PURPOSE = {
    "churn_risk": "order_taking",
    "incomplete_key_customer": "service",
    ReasonKind.next_action: "order_taking",
    ReasonKind.follow_up: "service",
}


@dataclass
class _Item:
    customer_id: uuid.UUID
    purpose: str
    reasons: list[dict[str, Any]] = field(default_factory=list)


async def _may_plan_for(
    session: AsyncSession, ctx: Context, principal: Principal, rep_id: uuid.UUID
) -> None:
    """The rep themselves, a manager of the rep's team, an admin; 404 for anyone else."""
    if principal.kind == "key":
        raise Forbidden("the next plan is asked by people (it reads the rep's follow-ups)")
    if principal.is_admin or principal.user_id == rep_id:
        return
    user = await ctx.directory.get_user(session, rep_id)
    if principal.is_manager and user is not None and principal.sees_team(user.team_id):
        return
    raise NotFound(f"no rep {rep_id}")


def _add(
    items: dict[uuid.UUID, _Item], customer_id: uuid.UUID, purpose: str, reason: dict[str, Any]
) -> None:
    item = items.get(customer_id)
    if item is None:
        item = items[customer_id] = _Item(customer_id, purpose)
    item.reasons.append(reason)


def _slots(ctx: Context, day: date, count: int) -> list[tuple[Any, Any]]:
    start = ctx.calendar.start(day) + DAY_STARTS
    length = min(LONGEST_SLOT, DAY_LENGTH / max(count, 1))
    return [(start + n * length, start + (n + 1) * length) for n in range(count)]


def _note(reasons: list[dict[str, Any]]) -> str:
    return "; ".join(r["detail"] for r in reasons)


async def next_plan(
    session: AsyncSession,
    principal: Principal,
    ctx: Context,
    calls: CallerCalls,
    query: NextPlanQuery,
) -> dict[str, Any]:
    rep_id = query.rep_id or principal.user_id
    if rep_id is None:
        raise Forbidden("the next plan is asked by people (it reads the rep's follow-ups)")
    await _may_plan_for(session, ctx, principal, rep_id)
    day = query.date
    items: dict[uuid.UUID, _Item] = {}
    for alert in await alerts.live_on_customers(session, rep_id):
        _add(
            items,
            alert.customer_id,
            PURPOSE.get(alert.rule, "service"),
            {
                "kind": ReasonKind.alert,
                "detail": f"alert {alert.rule.replace('_', ' ')} since {alert.raised_at.date()}",
                "alert_id": alert.id,
                "rule": alert.rule,
                "figures": alert.figures,
            },
        )
    for opp in await repository.due_actions(session, rep_id, day):
        _add(
            items,
            opp.customer_id,
            PURPOSE[ReasonKind.next_action],
            {
                "kind": ReasonKind.next_action,
                "detail": f"next action due {opp.next_action_on}: {opp.next_action or 'follow up'}",
                "opportunity_id": opp.id,
                "due_on": opp.next_action_on,
            },
        )
    for due in await visits_api.follow_ups(calls, rep_id, day, query.limit):
        customer_id = uuid.UUID(str(due["customer_id"]))
        when = "never visited" if due.get("never_visited") else f"due {due.get('due_on')}"
        _add(
            items,
            customer_id,
            PURPOSE[ReasonKind.follow_up],
            {
                "kind": ReasonKind.follow_up,
                "detail": f"follow-up of a level {due.get('level')} customer, {when}",
                "due_on": due.get("due_on"),
            },
        )
    chosen = list(items.values())[: query.limit]
    names = await repository.customers(session, (i.customer_id for i in chosen))
    suggestions, plan_items = [], []
    for item, (start, end) in zip(chosen, _slots(ctx, day, len(chosen)), strict=True):
        known = names.get(item.customer_id)
        suggestions.append(
            {
                "customer_id": item.customer_id,
                "customer_code": None if known is None else known.code,
                "customer_name": None if known is None else known.name,
                "purpose": item.purpose,
                "reasons": item.reasons,
            }
        )
        plan_items.append(
            {
                "customer_id": item.customer_id,
                "slot_start": start,
                "slot_end": end,
                "purpose": item.purpose,
                "note": _note(item.reasons)[:2000],
            }
        )
    return {
        "rep_id": rep_id,
        "date": day,
        "suggestions": suggestions,
        "plan": {"plan_date": day, "items": plan_items},
    }
