"""Statements of the pipeline: opportunities, stage history, board, stalled list, norms."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.config import Settings
from opportunities.pipeline.access import can_see
from opportunities.pipeline.models import (
    CYCLE,
    OPPORTUNITIES,
    OPPORTUNITY_OWNERS,
    STAGE_CHANGES,
    STAGE_NORMS,
)
from opportunities.pipeline.schemas import OpportunityListQuery
from servicekit import bulk
from servicekit.auth import Principal
from servicekit.directory import Directory
from servicekit.pagination import PageParams, keyset, make_page

P = OPPORTUNITIES.c
S = STAGE_CHANGES.c
N = STAGE_NORMS.c
DAY = sa.text("interval '1 day'")
MUTABLE = (
    "name",
    "owner_id",
    "team_id",
    "amount",
    "expected_close_on",
    "stage",
    "probability",
    "next_action",
    "next_action_on",
    "risks",
    "competitors",
    "lost_reason",
    "lost_to",
    "stage_entered_at",
    "closed_at",
    "won_at",
    "stage_due_at",
    "cycle_due_at",
    "version",
    "updated_at",
)


def visibility_filter(principal: Principal) -> sa.ColumnElement[bool]:
    """`access.can_see` as the WHERE clause of a list."""
    if principal.kind == "key":
        return sa.true() if can_see(principal, None) else sa.false()
    if principal.is_admin:
        return sa.true()
    own = P.owner_id == principal.user_id if principal.user_id else sa.false()
    if principal.is_manager:
        teams = principal.team_uuids()
        return sa.or_(own, P.team_id.in_(teams)) if teams else own
    return own


async def get(session: AsyncSession, opportunity_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = sa.select(OPPORTUNITIES).where(P.id == opportunity_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(OPPORTUNITIES).values(values))


async def update(session: AsyncSession, opportunity: dict[str, Any]) -> None:
    await session.execute(
        sa.update(OPPORTUNITIES)
        .where(P.id == opportunity["id"])
        .values({name: opportunity[name] for name in MUTABLE})
    )


async def hand_over(
    session: AsyncSession, from_owner: uuid.UUID, to_owner: uuid.UUID, now: datetime
) -> list[Any]:
    """Every open opportunity of `from_owner` becomes `to_owner`'s (one statement); the rows
    as they are now."""
    stmt = (
        sa.update(OPPORTUNITIES)
        .where(P.owner_id == from_owner, P.closed_at.is_(None))
        .values(owner_id=to_owner, version=P.version + 1, updated_at=now)
        .returning(OPPORTUNITIES)
    )
    return sorted((await session.execute(stmt)).all(), key=lambda r: r.id)


async def log_owners(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.insert_rows(session, OPPORTUNITY_OWNERS, rows)


async def owners(
    session: AsyncSession, opportunity_id: uuid.UUID, params: PageParams
) -> tuple[list[Any], str | None]:
    o = OPPORTUNITY_OWNERS.c
    stmt = sa.select(OPPORTUNITY_OWNERS).where(o.opportunity_id == opportunity_id)
    rows = (await session.execute(keyset(stmt, [o.id], params))).all()
    return make_page(rows, params, lambda r: [r.id])


async def record_change(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(STAGE_CHANGES).values(values))


async def changes(
    session: AsyncSession, opportunity_id: uuid.UUID, params: PageParams
) -> tuple[list[Any], str | None]:
    stmt = sa.select(STAGE_CHANGES).where(S.opportunity_id == opportunity_id)
    rows = (await session.execute(keyset(stmt, [S.id], params))).all()
    return make_page(rows, params, lambda r: [r.id])


async def stage_closed_from(session: AsyncSession, opportunity_id: uuid.UUID) -> str | None:
    """The stage the opportunity was in when it closed (its last move's origin)."""
    stmt = (
        sa.select(S.from_stage)
        .where(S.opportunity_id == opportunity_id)
        .order_by(S.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, principal: Principal, query: OpportunityListQuery, directory: Directory
) -> tuple[list[Any], str | None]:
    stmt = sa.select(OPPORTUNITIES).where(visibility_filter(principal))
    if query.orphaned is not None:
        u = directory.users.c
        gone = sa.select(u.id).where(u.id == P.owner_id, u.active.is_(False)).exists()
        orphaned = sa.and_(P.closed_at.is_(None), gone)
        stmt = stmt.where(orphaned if query.orphaned else sa.not_(orphaned))
    if query.owner_id is not None:
        stmt = stmt.where(P.owner_id == query.owner_id)
    if query.team_id is not None:
        stmt = stmt.where(P.team_id == query.team_id)
    if query.customer_id is not None:
        stmt = stmt.where(P.customer_id == query.customer_id)
    if query.stage is not None:
        stmt = stmt.where(P.stage == query.stage)
    if query.open is not None:
        stmt = stmt.where(P.closed_at.is_(None) if query.open else P.closed_at.is_not(None))
    params = PageParams(query.limit, query.cursor)
    rows = (
        await session.execute(keyset(stmt, [P.created_at, P.id], params, descending=True))
    ).all()
    return make_page(rows, params, lambda r: [r.created_at, r.id])


# --- the board --------------------------------------------------------------------------------


async def known_tree(
    session: AsyncSession, directory: Directory, team_id: uuid.UUID
) -> list[uuid.UUID]:
    """The team and every team below it, in one statement; empty when the directory does not
    know the team."""
    t = directory.teams.c
    down = sa.select(t.id).where(t.id == team_id).cte("tree", recursive=True)
    down = down.union(sa.select(t.id).where(t.parent_id == down.c.id))
    return list((await session.execute(sa.select(down.c.id))).scalars())


async def board(
    session: AsyncSession,
    principal: Principal,
    teams: Sequence[uuid.UUID] | None,
    per_stage: int,
) -> list[Any]:
    """One statement: the open opportunities the caller sees (of `teams`, when given), ranked
    per stage by amount, largest first; each row carries its stage's count and amount. At
    least the first of each stage comes back (`rank` > `per_stage`: totals only), so a
    stage's totals are there when no items are asked for. The service unpacks the columns
    in this order."""
    where = [P.closed_at.is_(None), visibility_filter(principal)]
    if teams is not None:
        # The teams as values (not a subquery): the planner takes the (team, stage) index.
        where.append(P.team_id.in_(list(teams)))
    ranked = (
        sa.select(
            P.id,
            P.name,
            P.customer_id,
            P.owner_id,
            P.amount,
            P.stage,
            P.probability,
            P.stage_entered_at,
            P.expected_close_on,
            P.next_action_on,
            P.stalled_at,
            sa.func.row_number()
            .over(partition_by=P.stage, order_by=(P.amount.desc().nulls_last(), P.id))
            .label("rank"),
            sa.func.count().over(partition_by=P.stage).label("stage_count"),
            sa.func.coalesce(sa.func.sum(P.amount).over(partition_by=P.stage), 0).label(
                "stage_amount"
            ),
        )
        .where(*where)
        .subquery("ranked")
    )
    stmt = (
        sa.select(ranked)
        .where(ranked.c.rank <= max(per_stage, 1))
        .order_by(ranked.c.stage, ranked.c.rank)
    )
    return list((await session.execute(stmt)).all())


# --- the stalled list -------------------------------------------------------------------------


async def stalled(
    session: AsyncSession,
    principal: Principal,
    now: datetime,
    params: PageParams,
    *,
    team_ids: Sequence[uuid.UUID] | None,
    owner_id: uuid.UUID | None,
) -> tuple[list[Any], str | None]:
    """Open opportunities past their due time, the longest stalled first; each with whether
    its team's usual times are learned (norm rows) or the expected days."""
    stage_norm = STAGE_NORMS.alias("stage_norm")
    cycle_norm = STAGE_NORMS.alias("cycle_norm")
    stmt = (
        sa.select(
            P.id,
            P.name,
            P.customer_id,
            P.owner_id,
            P.team_id,
            P.stage,
            P.amount,
            P.stage_entered_at,
            P.created_at,
            P.stage_due_at,
            P.cycle_due_at,
            P.stalled_at,
            (stage_norm.c.team_id.is_not(None)).label("stage_learned"),
            (cycle_norm.c.team_id.is_not(None)).label("cycle_learned"),
        )
        .select_from(
            OPPORTUNITIES.outerjoin(
                stage_norm,
                sa.and_(stage_norm.c.team_id == P.team_id, stage_norm.c.stage == P.stage),
            ).outerjoin(
                cycle_norm, sa.and_(cycle_norm.c.team_id == P.team_id, cycle_norm.c.stage == CYCLE)
            )
        )
        .where(P.closed_at.is_(None), P.stalled_at <= now, visibility_filter(principal))
    )
    if team_ids is not None:
        stmt = stmt.where(P.team_id.in_(list(team_ids)))
    if owner_id is not None:
        stmt = stmt.where(P.owner_id == owner_id)
    rows = (await session.execute(keyset(stmt, [P.stalled_at, P.id], params))).all()
    return make_page(rows, params, lambda r: [r.stalled_at, r.id])


# --- learned usual times ------------------------------------------------------------------------


async def norm_days(
    session: AsyncSession, team_id: uuid.UUID | None, stage: str
) -> tuple[float | None, float | None]:
    """(the team's learned days for `stage`, for the whole cycle); None where not learned."""
    if team_id is None:
        return None, None
    rows = await session.execute(
        sa.select(N.stage, N.days).where(N.team_id == team_id, N.stage.in_((stage, CYCLE)))
    )
    found = {r.stage: float(r.days) for r in rows}
    return found.get(stage), found.get(CYCLE)


async def recompute_norms(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Replace the learned usual times: per team and open stage the percentile of the days
    spent in it (every move out of it), per team the percentile of creation -> won; each only
    from `stall_min_samples` samples on. Returns how many norms there are now."""
    p = settings.stall_percentile
    open_names = [s.name for s in settings.open_stages]
    in_stage = (
        sa.select(
            S.team_id,
            S.from_stage.label("stage"),
            sa.func.percentile_cont(p).within_group(S.days_in_previous).label("days"),
            sa.func.count().label("samples"),
        )
        .where(
            S.team_id.is_not(None),
            S.from_stage.in_(open_names),
            S.days_in_previous.is_not(None),
        )
        .group_by(S.team_id, S.from_stage)
    )
    cycle_days = sa.extract("epoch", P.won_at - P.created_at) / 86400.0
    cycle = (
        sa.select(
            P.team_id,
            sa.literal(CYCLE).label("stage"),
            sa.func.percentile_cont(p).within_group(cycle_days).label("days"),
            sa.func.count().label("samples"),
        )
        .where(P.team_id.is_not(None), P.won_at.is_not(None))
        .group_by(P.team_id)
    )
    learned = sa.union_all(in_stage, cycle).subquery("learned")
    await session.execute(sa.delete(STAGE_NORMS))
    await session.execute(
        sa.insert(STAGE_NORMS).from_select(
            ["team_id", "stage", "days", "samples", "updated_at"],
            sa.select(
                learned.c.team_id,
                learned.c.stage,
                sa.func.round(sa.cast(learned.c.days, sa.Numeric), 1),
                learned.c.samples,
                sa.literal(now, sa.DateTime(timezone=True)),
            ).where(learned.c.samples >= settings.stall_min_samples),
        )
    )
    return int(
        (await session.execute(sa.select(sa.func.count()).select_from(STAGE_NORMS))).scalar_one()
    )


def _expected_days(settings: Settings) -> sa.ColumnElement[Any]:
    return sa.case(
        {s.name: s.expected_days for s in settings.open_stages},
        value=P.stage,
        else_=settings.open_stages[0].expected_days,
    )


async def reschedule(session: AsyncSession, settings: Settings) -> int:
    """Set every open opportunity's due times from the norms now in place (the expected days
    where none are learned); only rows whose times move are written."""
    stage_norm = STAGE_NORMS.alias("stage_norm")
    cycle_norm = STAGE_NORMS.alias("cycle_norm")
    cycle_expected = sum(s.expected_days or 0 for s in settings.open_stages)
    due = (
        sa.select(
            P.id,
            (
                P.stage_entered_at
                + sa.func.coalesce(stage_norm.c.days, _expected_days(settings)) * DAY
            ).label("stage_due"),
            (P.created_at + sa.func.coalesce(cycle_norm.c.days, cycle_expected) * DAY).label(
                "cycle_due"
            ),
        )
        .select_from(
            OPPORTUNITIES.outerjoin(
                stage_norm,
                sa.and_(stage_norm.c.team_id == P.team_id, stage_norm.c.stage == P.stage),
            ).outerjoin(
                cycle_norm, sa.and_(cycle_norm.c.team_id == P.team_id, cycle_norm.c.stage == CYCLE)
            )
        )
        .where(P.closed_at.is_(None))
        .subquery("due")
    )
    stmt = (
        sa.update(OPPORTUNITIES)
        .where(
            P.id == due.c.id,
            sa.or_(
                P.stage_due_at.is_distinct_from(due.c.stage_due),
                P.cycle_due_at.is_distinct_from(due.c.cycle_due),
            ),
        )
        .values(stage_due_at=due.c.stage_due, cycle_due_at=due.c.cycle_due)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
