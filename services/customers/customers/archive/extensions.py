"""Extension points: other features of this service plug into the archive here.

- `file_sections` / `card_sections`: named sections of the full file (`GET /{id}`) and the
  card (`GET /{id}/card`). Commerce registers e.g. "contacts", "orders", "data_quality";
  the visits memos register on the card (see below). A section is
  `async fn(session, principal, customer: CustomerRead) -> JSON-able`, called only after
  access was checked. Register at import time of the feature's module (main imports it).
- `file_sql_sections`: the same as `file_sections`, but as SQL: `fn(customer_id_column)`
  returns a correlated scalar expression whose value is JSON (e.g. a `json_agg` subquery).
  The full file is then ONE statement on the direct reads (`Database.direct_reads`),
  whatever the number of sections — the hot `GET /{id}` path; prefer it over `file_sections`
  for anything on that path.
- `purchases`: the trailing purchase amount per customer for the proposed level, as a SQL
  select of (customer_id, amount) since a given time, so that the "level differs" list stays
  one query. Until commerce sets it, the proposed level uses the estimated potential only.
- `after_create`: called with the rows just created (e.g. to create the contacts given in
  `CustomerCreate.contacts`), in the same transaction.
- `duplicate_finder`: replaces the default likely-duplicate lookup used on create.

The card's visit memos (not built yet: the visits service publishes no feed so far). The plan,
on the pattern of the kit's `servicekit.consumer.following`: a `customers.visit_memos` read model
(customer_id, visit_id, visited_at, rep_id, memo) filled by an `EventConsumer` following
`{GATEWAY_URL}/api/v1/events/visits` (`visit.completed` carries the memo), started from a hook
when the feed is configured, and a card section "visit_memos" reading the latest few rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal

if TYPE_CHECKING:
    from customers.archive.schemas import CustomerCreate, CustomerRead

SectionFn = Callable[[AsyncSession, Principal, "CustomerRead"], Awaitable[Any]]
SqlSectionFn = Callable[["sa.ColumnElement[uuid.UUID]"], "sa.ColumnElement[Any]"]
PurchasesQuery = Callable[[datetime], "sa.Select[Any]"]
AfterCreate = Callable[
    [AsyncSession, Principal | None, Sequence[tuple[uuid.UUID, "CustomerCreate"]]],
    Awaitable[None],
]
DuplicateFinder = Callable[
    [AsyncSession, "CustomerCreate", uuid.UUID | None], Awaitable[list[dict[str, Any]]]
]


class SectionRegistry:
    def __init__(self) -> None:
        self._sections: dict[str, SectionFn] = {}

    def register(self, name: str, fn: SectionFn) -> None:
        self._sections[name] = fn

    def items(self) -> list[tuple[str, SectionFn]]:
        return list(self._sections.items())

    async def render(
        self, session: AsyncSession, principal: Principal, customer: CustomerRead
    ) -> dict[str, Any]:
        return {name: await fn(session, principal, customer) for name, fn in self.items()}


class SqlSectionRegistry:
    def __init__(self) -> None:
        self._sections: dict[str, SqlSectionFn] = {}
        self.generation = 0  # bumped on every change, so compiled statements are rebuilt

    def register(self, name: str, fn: SqlSectionFn) -> None:
        self._sections[name] = fn
        self.generation += 1

    def unregister(self, name: str) -> None:
        if self._sections.pop(name, None) is not None:
            self.generation += 1

    def items(self) -> list[tuple[str, SqlSectionFn]]:
        return list(self._sections.items())


class _Hooks:
    purchases: PurchasesQuery | None = None
    duplicate_finder: DuplicateFinder | None = None

    def __init__(self) -> None:
        self.after_create: list[AfterCreate] = []


file_sections = SectionRegistry()
file_sql_sections = SqlSectionRegistry()
card_sections = SectionRegistry()
hooks = _Hooks()


def set_purchases_source(fn: PurchasesQuery) -> None:
    hooks.purchases = fn
    file_sql_sections.generation += 1


def add_after_create(fn: AfterCreate) -> None:
    if fn not in hooks.after_create:
        hooks.after_create.append(fn)


def set_duplicate_finder(fn: DuplicateFinder) -> None:
    hooks.duplicate_finder = fn
