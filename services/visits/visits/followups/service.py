"""The follow-up due list (the maintenance plan of seed 000 made concrete): active customers
whose last effective completed visit is older than their level's cadence, or who were never
visited; a rep's own, or the customers of a manager's teams."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.pagination import PageParams, make_page
from visits import calendar
from visits.access import require_read, sees_everything, sees_rep
from visits.config import Settings
from visits.customer_facts.models import CUSTOMERS
from visits.followups import repository
from visits.followups.schemas import FollowUp, FollowUpQuery


async def follow_ups(
    session: AsyncSession, principal: Principal, settings: Settings, query: FollowUpQuery
) -> tuple[list[FollowUp], str | None]:
    require_read(principal)
    C = CUSTOMERS.c
    where: list[sa.ColumnElement[bool]] = []
    if query.rep_id is not None:
        if not await sees_rep(session, principal, query.rep_id):
            return [], None
        where.append(C.owner_id == query.rep_id)
    elif not sees_everything(principal):
        me = principal.user_id
        own = C.owner_id == me
        teams = principal.team_uuids()
        where.append(sa.or_(own, C.team_id.in_(teams)) if principal.is_manager and teams else own)
    today = calendar.local_date(utcnow(), settings.zone)
    due_before = query.due_before or today + timedelta(days=1)
    page = PageParams(query.limit, query.cursor)
    rows = await repository.due_page(session, where, due_before, page)
    items, cursor = make_page(rows, page, lambda r: [r.level, r.due_key, r.id])
    return [
        FollowUp(
            customer_id=r.id,
            customer_code=r.code,
            customer_name=r.name,
            level=r.level,
            region=r.region,
            owner_id=r.owner_id,
            team_id=r.team_id,
            cadence_days=r.cadence_days,
            last_visit_at=r.last_visit_at,
            last_effective_on=r.last_effective_on,
            never_visited=r.last_visit_at is None,
            due_on=r.due_on,
            days_overdue=None if r.due_on is None else (today - r.due_on).days,
        )
        for r in items
    ], cursor
