"""The rules of targets: who sets which, one target per metric, period and scope, the
decomposition one level down (children sum to the parent exactly), and the reasonableness
check against last year's actual (warnings; the target is saved anyway)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics import scopes
from analytics.config import Settings
from analytics.kpis import repository as kpis
from analytics.kpis.definitions import MONEY_TARGETS, TARGET_METRICS
from analytics.kpis.measures import Context
from analytics.periods import TARGET_KINDS, Period, children, containing, parse_named
from analytics.scopes import Scope, ScopeKind
from analytics.targets import events, repository
from analytics.targets.decompose import split
from analytics.targets.exceptions import AlreadyDecomposed, TargetExists, TargetNotFound
from analytics.targets.schemas import Decompose, TargetCreate, TargetListQuery, TargetUpdate
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Forbidden, NotFound, ValidationFailed
from servicekit.ids import new_id
from servicekit.outbox import record_event
from servicekit.pagination import PageParams, make_page

CENT, ONE = Decimal("0.01"), Decimal(1)


@dataclass(frozen=True, slots=True)
class Where:
    """A target's scope: a KPI scope, or a product (measured by its order lines)."""

    kind: str
    key: str  # "" for the company
    scope: Scope | None  # None for a product


def period_of(row: Any) -> Period:
    return containing(row.period_kind, row.period_start)


def read(row: Any) -> dict[str, Any]:
    period = period_of(row)
    return {
        "id": row.id,
        "metric": row.metric,
        "period": period.label,
        "from": period.start,
        "to": period.end,
        "scope": row.scope,
        "scope_id": row.scope_key or None,
        "parent_id": row.parent_id,
        "method": row.method,
        "value": row.value,
        "note": row.note,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _period(text: str, field: str = "period") -> Period:
    try:
        period = parse_named(text)
    except ValueError as exc:
        raise ValidationFailed.field(field, str(exc)) from None
    if period.kind not in TARGET_KINDS:
        raise ValidationFailed.field(field, "targets are set per year, quarter or month")
    return period


async def _where(session: AsyncSession, ctx: Context, kind: str, key: str | None) -> Where:
    if kind == "product":
        if not key or not key.strip():
            raise ValidationFailed.field("scope_id", "names the product for a product scope")
        return Where("product", key.strip(), None)
    scope = await scopes.parse(session, ctx.directory, kind, key)  # type: ignore[arg-type]
    return Where(kind, scope.key or "", scope)


async def _scope_of(session: AsyncSession, ctx: Context, row: Any) -> Where:
    if row.scope == "product":
        return Where("product", row.scope_key, None)
    if row.scope == "team":
        team = await scopes.team_scope(session, ctx.directory, uuid.UUID(row.scope_key))
        return Where("team", row.scope_key, team)
    if row.scope == "rep":
        return Where("rep", row.scope_key, Scope(ScopeKind.rep, uuid.UUID(row.scope_key)))
    if row.scope == "region":
        return Where("region", row.scope_key, Scope(ScopeKind.region, region=row.scope_key))
    return Where("company", "", scopes.COMPANY)


async def _may_read(
    session: AsyncSession, ctx: Context, principal: Principal, where: Where
) -> bool:
    if where.scope is None:  # a product: the company's business
        if principal.kind == "key":
            principal.require_scope(scopes.KPIS_READ)
            return True
        return principal.is_admin
    return await scopes.may_read(session, ctx.directory, principal, where.scope)


async def _may_set(session: AsyncSession, ctx: Context, principal: Principal, where: Where) -> None:
    """404 when the caller may not even see the scope, 403 when they see it but do not set
    its targets."""
    if principal.kind == "key":
        raise Forbidden("targets are set by managers and admins, not by API keys")
    if not await _may_read(session, ctx, principal, where):
        raise NotFound(f"no {where.kind} {where.key}" if where.key else f"no {where.kind} scope")
    if where.scope is not None:
        await scopes.may_set_targets(session, ctx.directory, principal, where.scope)


async def actual(session: AsyncSession, metric: str, where: Where, period: Period) -> Decimal:
    """The metric's actual in the scope and period."""
    if where.scope is None:
        return await repository.product_sales(session, where.key, period)
    rolled = await kpis.one_row(session, kpis.rolled_up(where.scope, period))
    return Decimal(rolled[TARGET_METRICS[metric]])


async def check(
    session: AsyncSession,
    settings: Settings,
    metric: str,
    where: Where,
    period: Period,
    value: Decimal,
) -> tuple[Period, Decimal, list[dict[str, Any]]]:
    """Last year's actual of the same metric, scope and period, and the warnings the value
    earns against it: growth above the factor, or a fall below it by more than the share."""
    before = period.year_before()
    last = await actual(session, metric, where, before)
    warnings: list[dict[str, Any]] = []
    if last > 0:
        ratio = (value / last).quantize(Decimal("0.0001"))
        if ratio > settings.target_growth_factor:
            warnings.append(
                {
                    "code": "growth_above_factor",
                    "detail": f"{ratio}x last year's actual ({last} in {before.label}); more than "
                    f"{settings.target_growth_factor}x is unusual",
                    "last_year": last,
                    "ratio": ratio,
                }
            )
        elif ratio < 1 - settings.target_decline_share:
            warnings.append(
                {
                    "code": "below_last_year",
                    "detail": f"{ratio}x last year's actual ({last} in {before.label}); more than "
                    f"{settings.target_decline_share:%} below it",
                    "last_year": last,
                    "ratio": ratio,
                }
            )
    return before, last, warnings


def _unit(metric: str, value: Decimal, field: str = "value") -> Decimal:
    if metric in MONEY_TARGETS:
        return CENT
    if value != value.to_integral_value():
        raise ValidationFailed.field(field, f"{metric} is a count: a whole number")
    return ONE


async def _emit(session: AsyncSession, type_: str, target: dict[str, Any], **extra: Any) -> None:
    await record_event(session, type_, target["id"], {**events.target_facts(target), **extra})


def _row(
    principal: Principal, metric: str, period: Period, where: Where, value: Decimal, **extra: Any
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id(),
        "metric": metric,
        "period_kind": period.kind,
        "period_start": period.start,
        "scope": where.kind,
        "scope_key": where.key,
        "parent_id": None,
        "method": "manual",
        "value": value,
        "note": None,
        "version": 1,
        "created_by": principal.sub,
        "created_at": now,
        "updated_at": now,
        **extra,
    }


async def _taken(session: AsyncSession, metric: str, period: Period, where: Where) -> None:
    found = await repository.find(session, metric, period, where.kind, where.key)
    if found is not None:
        raise TargetExists(
            f"{metric} for {where.kind} {where.key or ''} in {period.label} is target {found.id}",
            target_id=str(found.id),
        )


async def create(
    session: AsyncSession,
    principal: Principal,
    ctx: Context,
    settings: Settings,
    body: TargetCreate,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    period = _period(body.period)
    if body.scope == "product" and body.metric != "sales_amount":
        raise ValidationFailed.field("metric", "a product's target is a sales_amount")
    _unit(body.metric, body.value)
    where = await _where(session, ctx, body.scope, body.scope_id)
    await _may_set(session, ctx, principal, where)
    await _taken(session, body.metric, period, where)
    row = _row(principal, body.metric, period, where, body.value, note=body.note)
    await repository.insert(session, [row])
    target = read(await repository.get(session, row["id"]))
    await _emit(session, events.TARGET_CREATED, target)
    _, _, warnings = await check(session, settings, body.metric, where, period, body.value)
    return target, warnings


async def visible_target(
    session: AsyncSession,
    principal: Principal,
    ctx: Context,
    target_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Any:
    """The target, if the caller may see it; 404 otherwise."""
    if principal.kind == "key":
        principal.require_scope(scopes.KPIS_READ)
    row = await repository.get(session, target_id, for_update=for_update)
    if row is None or not await _may_read(
        session, ctx, principal, await _scope_of(session, ctx, row)
    ):
        raise TargetNotFound(target_id)
    return row


async def update(
    session: AsyncSession,
    principal: Principal,
    ctx: Context,
    settings: Settings,
    row: Any,
    body: TargetUpdate,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    where = await _scope_of(session, ctx, row)
    await _may_set(session, ctx, principal, where)
    given = body.model_dump(exclude_unset=True)
    if "value" in given:
        if given["value"] is None:
            raise ValidationFailed.field("value", "may not be null")
        _unit(row.metric, given["value"])
        if given["value"] != row.value and await repository.children(session, row.id):
            raise AlreadyDecomposed(
                "the target is decomposed: its children would no longer sum to it; "
                "delete them (DELETE each child) or decompose again after deleting"
            )
    changes = {k: v for k, v in given.items() if getattr(row, k) != v}
    if changes:
        await repository.update(
            session, row.id, {**changes, "version": row.version + 1, "updated_at": utcnow()}
        )
    target = read(await repository.get(session, row.id))
    if changes:
        await _emit(session, events.TARGET_UPDATED, target, changed_fields=sorted(changes))
    _, _, warnings = await check(
        session, settings, row.metric, where, period_of(row), target["value"]
    )
    return target, warnings


async def delete(session: AsyncSession, principal: Principal, ctx: Context, row: Any) -> None:
    await _may_set(session, ctx, principal, await _scope_of(session, ctx, row))
    target = read(row)
    await repository.delete(session, row.id)
    await _emit(session, events.TARGET_DELETED, target)


async def checked(
    session: AsyncSession, ctx: Context, settings: Settings, row: Any
) -> dict[str, Any]:
    where = await _scope_of(session, ctx, row)
    before, last, warnings = await check(
        session, settings, row.metric, where, period_of(row), row.value
    )
    return {
        "target_id": row.id,
        "last_year_period": before.label,
        "last_year_actual": last,
        "warnings": warnings,
    }


async def _children(
    session: AsyncSession, ctx: Context, row: Any, where: Where, into: str
) -> list[tuple[str, Where, Period]]:
    """(weight key, scope, period) of each child one level down."""
    period = period_of(row)
    if into in ("quarters", "months"):
        wanted = "year" if into == "quarters" else "quarter"
        if period.kind != wanted:
            raise ValidationFailed.field(
                "into", f"{into} split a {wanted}'s target, not a {period.kind}'s"
            )
        return [(p.label, where, p) for p in children(period)]
    if into == "teams":
        if where.kind == "company":
            teams = await repository.top_teams(session, ctx.directory)
        elif where.kind == "team" and where.scope is not None and where.scope.id is not None:
            teams = [t.id for t in await ctx.directory.subteams(session, where.scope.id)]
        else:
            raise ValidationFailed.field("into", "teams split the company's or a team's target")
        found = [
            (
                str(t),
                Where("team", str(t), await scopes.team_scope(session, ctx.directory, t)),
                period,
            )
            for t in teams
        ]
    else:
        if where.kind != "team" or where.scope is None or where.scope.id is None:
            raise ValidationFailed.field("into", "reps split a team's target")
        reps = await ctx.directory.reps_of(session, where.scope.id, include_subteams=False)
        found = [
            (str(r.id), Where("rep", str(r.id), Scope(ScopeKind.rep, r.id)), period) for r in reps
        ]
    if not found:
        raise ValidationFailed.field("into", f"the {where.kind} has no {into} to split into")
    return found


async def _weights(
    session: AsyncSession, row: Any, body: Decompose, found: list[tuple[str, Where, Period]]
) -> list[Decimal]:
    keys = [key for key, _, _ in found]
    if body.method == "even":
        if body.weights is not None:
            raise ValidationFailed.field("weights", "are given only with method 'weights'")
        return [ONE] * len(found)
    if body.method == "weights":
        given = body.weights or {}
        if not given:
            raise ValidationFailed.field("weights", "are required with method 'weights'")
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise ValidationFailed.field(f"weights.{unknown[0]}", "is not a child of this split")
        missing = [k for k in keys if k not in given]
        if missing:
            raise ValidationFailed.field(
                "weights", f"give a weight for every child (missing {missing[0]})"
            )
        if sum(given.values()) <= 0:
            raise ValidationFailed.field("weights", "are all zero")
        return [given[k] for k in keys]
    if body.weights is not None:
        raise ValidationFailed.field("weights", "are given only with method 'weights'")
    actuals = [
        await actual(session, row.metric, where, period.year_before()) for _, where, period in found
    ]
    if sum(actuals) <= 0:
        raise ValidationFailed.field("method", "no actuals last year to split in proportion to")
    return actuals


async def decompose(
    session: AsyncSession,
    principal: Principal,
    ctx: Context,
    settings: Settings,
    row: Any,
    body: Decompose,
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    where = await _scope_of(session, ctx, row)
    await _may_set(session, ctx, principal, where)
    if await repository.children(session, row.id):
        raise AlreadyDecomposed("delete its children to decompose it again")
    found = await _children(session, ctx, row, where, body.into)
    weights = await _weights(session, row, body, found)
    values = split(row.value, weights, _unit(row.metric, row.value))
    rows = []
    for (_, child, period), value in zip(found, values, strict=True):
        await _taken(session, row.metric, period, child)
        rows.append(
            _row(principal, row.metric, period, child, value, parent_id=row.id, method=body.method)
        )
    await repository.insert(session, rows)
    out = []
    for child_row, (_, child, period) in zip(rows, found, strict=True):
        target = read(await repository.get(session, child_row["id"]))
        _, _, warnings = await check(session, settings, row.metric, child, period, target["value"])
        out.append((target, warnings))
    parent = read(row)
    await _emit(
        session,
        events.TARGET_DECOMPOSED,
        parent,
        into=body.into,
        children=[events.target_facts(t) for t, _ in out],
    )
    return parent, out


async def list_targets(
    session: AsyncSession,
    principal: Principal,
    ctx: Context,
    query: TargetListQuery,
    page: PageParams,
) -> tuple[list[dict[str, Any]], str | None]:
    visible = None
    if principal.kind == "key":
        principal.require_scope(scopes.KPIS_READ)
    elif not principal.is_admin:
        teams: list[uuid.UUID] = []
        reps: list[uuid.UUID] = []
        if principal.is_manager:
            teams = [uuid.UUID(x) for x in principal.visible_team_ids]
            reps = [
                u.id for u in await ctx.directory.users_in(session, teams, include_inactive=True)
            ]
        visible = repository.visible(teams, reps, principal.user_id)
    period = None if query.period is None else _period(query.period)
    rows = await repository.page(
        session,
        page,
        visible=visible,
        metric=query.metric,
        scope=query.scope,
        scope_key=query.scope_id,
        period=period,
        parent_id=query.parent_id,
    )
    items, cursor = make_page(rows, page, lambda r: [r.created_at, r.id])
    return [read(r) for r in items], cursor
