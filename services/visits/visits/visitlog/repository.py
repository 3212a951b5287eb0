"""Statements of the visit log."""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.outbox import outbox_table
from servicekit.pagination import PageParams, keyset
from visits.customer_facts.models import CUSTOMERS
from visits.customer_facts.repository import visible_clause
from visits.geo import EARTH_RADIUS_M
from visits.visitlog.events import FROM_CUSTOMER_ROW
from visits.visitlog.models import LAST_CONTACTS, VISITS

V, CF, LC = VISITS.c, CUSTOMERS.c, LAST_CONTACTS.c


# A visit with its customer's code and name, built once (its shape is fixed): each read adds
# its WHERE to a copy instead of building the select of every column again.
_WITH_CUSTOMER = sa.select(
    VISITS, CF.code.label("customer_code"), CF.name.label("customer_name")
).select_from(VISITS.outerjoin(CUSTOMERS, CF.id == V.customer_id))


def _binds(table: sa.Table, prefix: str = "") -> dict[str, sa.BindParameter[Any]]:
    """Every column of `table` as a named parameter (`prefix` + its name)."""
    return {c.name: sa.bindparam(prefix + c.name, type_=c.type) for c in table.c}


# Built once: a statement made per request costs more to build than to run (its cache key is
# generated from every value), so the hot writes bind their values as parameters.
_CONTACT_PREFIX = "contact_"
_EVENT_PREFIX = "event_"
_EVENT_COLUMNS = ("id", "type", "source", "subject", "time", "data", "dataversion")
# The visit's columns a logged visit takes from its customer's row (`_customer_row`).
FROM_CUSTOMER = {
    "customer_status": "status",
    "customer_level": "level",
    "customer_region": "region",
    "distance_m": "distance_m",
    "far_from_customer": "far_from_customer",
}
# What the statement answers (the answer's fields it decides) -> the customer row's column.
ANSWERED = {
    "customer_code": "code",
    "customer_name": "name",
    "customer_status": "status",
    "distance_m": "distance_m",
    "far_from_customer": "far_from_customer",
}


def _distance_m(lat: Any, lon: Any, customer_lat: Any, customer_lon: Any) -> Any:
    """`geo.haversine_m` in SQL, the same operations in the same order (NULL when a point is
    missing)."""

    def f(name: str, *args: Any) -> Any:
        return getattr(sa.func, name)(*args, type_=sa.Double)

    p1, p2 = f("radians", lat), f("radians", customer_lat)
    dlat, dlon = p2 - p1, f("radians", customer_lon - lon)
    a = f("power", f("sin", dlat / 2.0), 2.0) + f("cos", p1) * f("cos", p2) * f(
        "power", f("sin", dlon / 2.0), 2.0
    )
    root = f("sqrt", a)
    # min(1, root), NULL with it (LEAST would ignore a NULL).
    return 2.0 * EARTH_RADIUS_M * f("asin", sa.case((root > 1.0, 1.0), else_=root))


def _customer_row(binds: dict[str, sa.BindParameter[Any]]) -> sa.CTE:
    """The visit's customer, if the caller may see it (`visible_clause`), with the check-in's
    distance from it (rounded as the answer shows it) and the far flag: no row for a customer
    the caller may not see or the service has not heard of."""
    located = _distance_m(binds["check_in_lat"], binds["check_in_lon"], CF.lat, CF.lon)
    distance = (
        sa.select(CUSTOMERS, located.label("distance"))
        .where(CF.id == binds["customer_id"], visible_clause())
        .subquery("located")
    )
    d = distance.c
    return sa.select(
        d.code,
        d.name,
        d.status,
        d.level,
        d.region,
        d.owner_id,
        d.team_id,
        sa.cast(sa.func.round(sa.cast(d.distance, sa.Numeric), 1), sa.Double).label("distance_m"),
        sa.func.coalesce(d.distance > sa.bindparam("far_m", type_=sa.Double), sa.false()).label(
            "far_from_customer"
        ),
    ).cte("customer")


@functools.cache
def _logged(completed: bool, outbox: sa.Table | None) -> sa.Select[Any]:
    """A visit about a customer the caller may see, as one statement: the customer's row
    (`_customer_row`), the visit inserted from it and, for a completed visit, its customer's
    last contact and its event (data-modifying CTEs, which PostgreSQL runs whether or not the
    statement reads them); it answers the `ANSWERED` columns, or no row when the customer is
    not one the caller may see (then nothing is written)."""
    binds = _binds(VISITS)
    customer = _customer_row(binds)
    columns = [c.name for c in VISITS.c]
    row = [customer.c[FROM_CUSTOMER[n]] if n in FROM_CUSTOMER else binds[n] for n in columns]
    ctes: list[Any] = [
        sa.insert(VISITS).from_select(columns, sa.select(*row).select_from(customer)).cte("visit")
    ]
    if completed:
        assert outbox is not None
        ctes.append(_contact_upsert(_CONTACT_PREFIX, customer).cte("last_contact"))
        ctes.append(_event_insert(outbox, customer).cte("event"))
    answer = [customer.c[column].label(name) for name, column in ANSWERED.items()]
    return sa.select(*answer).add_cte(*ctes)


def _event_insert(outbox: sa.Table, customer: sa.CTE) -> sa.Insert:
    """The event's outbox row, its data completed from the customer's row."""
    binds = _binds(outbox, _EVENT_PREFIX)
    pairs = [
        part
        for key, column in FROM_CUSTOMER_ROW.items()
        for part in (sa.literal(key, sa.Text), customer.c[column])
    ]
    # Merged as jsonb (json has no `||`), stored as the outbox's json.
    given = sa.bindparam(_EVENT_PREFIX + "data", type_=JSONB)
    merged = given.op("||", return_type=JSONB)(sa.func.jsonb_build_object(*pairs))
    data = sa.cast(merged, outbox.c.data.type)
    row = [data if k == "data" else binds[k] for k in _EVENT_COLUMNS]
    return sa.insert(outbox).from_select(
        list(_EVENT_COLUMNS), sa.select(*row).select_from(customer)
    )


async def insert_logged(
    session: AsyncSession,
    values: dict[str, Any],
    see: dict[str, Any],
    far_m: float,
    completed: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> sa.Row[Any] | None:
    """A visit about a customer the caller may see (`see`: `access.see_params`): `values`
    has every column but those `FROM_CUSTOMER` names; a completed one comes with its
    customer's last contact (`contact_values`) and its outbox row (`outbox.event_rows`, its
    data without the keys of `events.FROM_CUSTOMER_ROW`). The customer's `ANSWERED` columns,
    or None (and nothing written) when the customer is not one the caller may see."""
    params = {**values, **see, "far_m": far_m}
    outbox = None
    if completed is not None:
        contact, event = completed
        params.update({_CONTACT_PREFIX + k: v for k, v in contact.items()})
        params.update({_EVENT_PREFIX + k: event[k] for k in _EVENT_COLUMNS})
        outbox = outbox_table(session)
    result = await session.execute(_logged(completed is not None, outbox), params)
    row: sa.Row[Any] | None = result.first()
    return row


async def get(session: AsyncSession, visit_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = _WITH_CUSTOMER.where(V.id == visit_id)
    if for_update:
        stmt = stmt.with_for_update(of=VISITS)
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, visit_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(VISITS).where(V.id == visit_id).values(version=V.version + 1, **values)
    )


def _contact_upsert(prefix: str = "", source: sa.CTE | None = None) -> Any:
    """The last contact from bound values (from each row of `source`, when given)."""
    binds = _binds(LAST_CONTACTS, prefix)
    if source is None:
        stmt = pg_insert(LAST_CONTACTS).values(binds)
    else:
        stmt = pg_insert(LAST_CONTACTS).from_select(
            list(binds), sa.select(*binds.values()).select_from(source)
        )
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[LC.customer_id],
        set_={
            "last_visit_id": sa.case(
                (new.last_visit_at >= LC.last_visit_at, new.last_visit_id),
                else_=LC.last_visit_id,
            ),
            "last_visit_at": sa.func.greatest(LC.last_visit_at, new.last_visit_at),
            # GREATEST ignores NULLs: an ineffective visit keeps the last effective one.
            "last_effective_at": sa.func.greatest(LC.last_effective_at, new.last_effective_at),
            "last_effective_on": sa.func.greatest(LC.last_effective_on, new.last_effective_on),
        },
    )


_CONTACT_UPSERT = _contact_upsert()


async def record_contact(session: AsyncSession, contact: dict[str, Any]) -> None:
    """A completed visit moves the customer's last contact (and last effective one) forwards
    (`contact`: `contact_values`); a visit logged late for an earlier time moves nothing back."""
    await session.execute(_CONTACT_UPSERT, contact)


def contact_values(
    customer_id: uuid.UUID, visit_id: uuid.UUID, at: datetime, effective: bool, day: date
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "last_visit_id": visit_id,
        "last_visit_at": at,
        "last_effective_at": at if effective else None,
        "last_effective_on": day if effective else None,
    }


async def list_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], page: PageParams
) -> list[Any]:
    """Newest check-in first."""
    stmt = keyset(_WITH_CUSTOMER.where(*where), [V.check_in_at, V.id], page, descending=True)
    return list((await session.execute(stmt)).all())
