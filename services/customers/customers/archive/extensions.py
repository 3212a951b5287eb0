"""How the service's other features extend the archive, without the archive importing them.

`customers.main` builds one `ArchiveExtensions` from the features' own functions and hands it
to the app (`AppSpec.state`); endpoints receive it through the `Extensions` dependency and
pass it to the services that need it. Nothing registers itself on import.

- `file_sections` / `card_sections`: named sections of the full file (`GET /{id}`) and of
  the card (`GET /{id}/card`). A `Section` is `sql(customer_id_column)` returning a
  correlated scalar SQL expression whose value is JSON (e.g. a `json_agg` subquery), written
  in the feature's repository, and the `scope` an integration key needs to see it: the read
  scope of the endpoint that serves the same data on its own (orders: `orders:read`), so a
  composite answer never shows a key more than those endpoints would. Its JSON goes out
  under `sections.<name>` as PostgreSQL built it; a section the caller may not see is left
  out of the statement and the answer. The file and the card are each one statement,
  whatever the number of sections.
- `purchases`: the trailing purchase amount per customer for the proposed level, as a select
  of (customer_id, amount) of orders between two days (SQL expressions, bound per request),
  so that the "level differs" list stays one query. Without it the proposed level uses the
  estimated potential only. `purchases_scope`: what a key needs to see the figure itself
  (`purchases_12m`); without it the figure is null (the proposed level still shows).
- `after_create`: called with the customers just created (e.g. to store the contacts given
  in `CustomerCreate.contacts`), in the same transaction.
- `duplicate_finder`: the likely-duplicate check run on create and on a PATCH of the fields
  duplicates are matched on; without it there is none. It is given the caller: a candidate
  the caller may not see is never described to them.
- `after_change`: called with the ids of customers whose content or level changed (created,
  patched, a contact added...), or with None after the settings changed (every customer), in
  the same transaction: data quality keeps its score with it.

Sections may use two bound parameters besides the customer: `as_of` (a timestamp) and `today`
(its date, UTC): the full file binds them to now, the file "as of" a past time to that time,
so a section that honours them shows what it held then.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal

if TYPE_CHECKING:
    from customers.archive.schemas import CustomerCreate

SectionSql = Callable[["sa.ColumnElement[uuid.UUID]"], "sa.ColumnElement[Any]"]
# (customer_id, amount) of the orders dated from `since` up to `until` (both included).
PurchasesQuery = Callable[["sa.ColumnElement[date]", "sa.ColumnElement[date]"], "sa.Select[Any]"]
AfterCreate = Callable[
    [AsyncSession, Principal | None, Sequence[tuple[uuid.UUID, "CustomerCreate"]]],
    Awaitable[None],
]
# `data` is a `CustomerCreate` or a mapping with its fields (a patched record).
DuplicateFinder = Callable[
    [AsyncSession, Principal, Any, uuid.UUID | None],
    Awaitable[list[dict[str, Any]]],
]
AfterChange = Callable[[AsyncSession, Sequence[uuid.UUID] | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Section:
    """A named part of the full file or the card (see the module's docstring)."""

    sql: SectionSql
    # What an integration key needs to see it (users see every section of a customer they
    # may see).
    scope: str


@dataclass
class ArchiveExtensions:
    file_sections: dict[str, Section] = field(default_factory=dict)
    card_sections: dict[str, Section] = field(default_factory=dict)
    purchases: PurchasesQuery | None = None
    purchases_scope: str | None = None
    after_create: list[AfterCreate] = field(default_factory=list)
    duplicate_finder: DuplicateFinder | None = None
    after_change: list[AfterChange] = field(default_factory=list)


# The key of `AppSpec.state` (and `app.state`) the extensions are handed over under.
STATE_KEY = "archive_extensions"
