"""Source effectiveness: which lead sources bring qualified leads, wins and revenue, how fast,
and at what cost per win (seed 002: where marketing should spend)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.config import Settings
from opportunities.sources import repository
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Forbidden, NotFound, ValidationFailed

READ_SCOPE = "leads:read"
CENT = Decimal("0.01")


def require_figures(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(READ_SCOPE)
    elif principal.is_rep:
        raise Forbidden("source effectiveness is for managers and admins")


def _sees_everything(principal: Principal) -> bool:
    return principal.kind == "key" or principal.is_admin


def month_start(month: str) -> date:
    year, number = (int(part) for part in month.split("-"))
    return date(year, number, 1)


def cost_read(row: Any) -> dict[str, Any]:
    return {
        "source": row.source,
        "month": row.month.strftime("%Y-%m"),
        "amount": row.amount,
        "note": row.note,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


async def put_cost(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    source: str,
    month: str,
    amount: Decimal,
    note: str | None,
) -> dict[str, Any]:
    if principal.kind != "user" or not principal.is_admin:
        raise Forbidden("source costs are recorded by admins")
    if source not in settings.lead_sources:
        raise NotFound(f"no lead source {source!r}")
    try:
        first = month_start(month)
    except ValueError:
        raise ValidationFailed.field("month", "give it as YYYY-MM") from None
    row = await repository.put_cost(
        session,
        {
            "source": source,
            "month": first,
            "amount": amount,
            "note": note,
            "updated_at": utcnow(),
            "updated_by": principal.sub,
        },
    )
    return cost_read(row)


async def costs(
    session: AsyncSession, principal: Principal, start: date, end: date
) -> list[dict[str, Any]]:
    require_figures(principal)
    return [cost_read(r) for r in await repository.costs_in(session, start, end)]


async def effectiveness(
    session: AsyncSession, principal: Principal, settings: Settings, start: date, end: date
) -> dict[str, Any]:
    require_figures(principal)
    rows = {r.source: r for r in await repository.figures(session, principal, start, end)}
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for cost in await repository.costs_in(session, start, end):
        spent[cost.source] += cost.amount
    whole = _sees_everything(principal)
    sources = list(settings.lead_sources) + sorted(set(rows) - set(settings.lead_sources))
    out = []
    for source in sources:
        r = rows.get(source)
        leads = int(r.leads) if r else 0
        won = int(r.won) if r else 0
        cost = spent.get(source) if whole else None
        out.append(
            {
                "source": source,
                "leads": leads,
                "invalid": int(r.invalid) if r else 0,
                "invalid_rate": round(int(r.invalid) / leads, 4) if r and leads else None,
                "qualified": int(r.qualified) if r else 0,
                "contacted": int(r.contacted) if r else 0,
                "converted": int(r.converted) if r else 0,
                "won": won,
                "won_amount": Decimal(r.won_amount).quantize(CENT) if r else CENT * 0,
                "median_days_to_won": (
                    round(float(r.median_days), 2) if r and r.median_days is not None else None
                ),
                "cost": cost,
                "cost_per_won": ((cost / won).quantize(CENT) if cost is not None and won else None),
            }
        )
    return {"period_from": start, "period_to": end, "sources": out}
