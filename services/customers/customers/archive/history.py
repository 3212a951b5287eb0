"""Change history (who, when, which fields, old -> new) and the record as it was at a time.

As-of design: history keeps diffs, and `as_of` replays them backwards from the current row
(undo every change made after the asked time). Diffs are what the history endpoint shows
anyway, they keep each write (and the 10,000-row import) to one small row, and as-of reads are
rare and touch only the changes made since then. Full snapshots would double the write volume
for the benefit of that rare read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import repository
from servicekit.auth import Principal
from servicekit.db import utcnow

Changes = Mapping[str, tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a user, an integration key, or the system (e.g. a feed consumer)."""

    id: str | None
    kind: str = "user"

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.sub, principal.kind)


SYSTEM = Actor(None, "system")


def as_actor(who: Actor | Principal | None) -> Actor:
    if who is None:
        return SYSTEM
    return who if isinstance(who, Actor) else Actor.of(who)


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def diff_json(changes: Changes) -> dict[str, dict[str, Any]]:
    """{field: {old, new}}; values are JSON-encoded on insert (`servicekit.db.json_text`)."""
    return {f: {"old": old, "new": new} for f, (old, new) in changes.items()}


def history_row(
    customer_id: uuid.UUID,
    version: int,
    actor: Actor,
    action: str,
    changes: Changes,
    *,
    comment: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "version": version,
        "at": at or utcnow(),
        "actor_id": actor.id,
        "actor_kind": actor.kind,
        "action": action,
        "changes": diff_json(changes),
        "comment": comment,
    }


async def write_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await repository.write_history(session, rows)


async def record_change(
    session: AsyncSession,
    customer: Any,
    actor: Actor | Principal | None,
    changes: Changes,
    *,
    action: str = "updated",
    comment: str | None = None,
) -> None:
    """Write one history entry for `customer` at its current `version`.

    `changes` maps field -> (old, new). Callers bump `customer.version` before calling; the
    merge and import paths reuse this so every change of a customer reads the same way.
    """
    if not changes:
        return
    row = history_row(
        customer.id, customer.version, as_actor(actor), action, changes, comment=comment
    )
    await write_history(session, [row])


# Actions of the history that concern a contact (`changes = {"contact": {old, new}}`): they
# do not change the record's own fields or version.
CONTACT_ACTIONS = frozenset({"contact_added", "contact_updated", "contact_removed"})
# Actions that change what the record says (data quality's "recently updated").
CONTENT_ACTIONS = frozenset({"created", "updated", "merged", *CONTACT_ACTIONS})


def replay_backwards(
    current: Mapping[str, Any], newer: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """Undo `newer` (newest first) on `current`; None when the record did not exist yet.
    `current["contacts"]`, when given, is replayed too (a list of contact states)."""
    state = dict(current)
    contacts = list(state.get("contacts") or ())
    for entry in newer:
        if entry["action"] == "created":
            return None
        if entry["action"] in CONTACT_ACTIONS:
            change = entry["changes"]["contact"]
            gone = (change["new"] or change["old"])["id"]
            contacts = [c for c in contacts if c["id"] != gone]
            if change["old"] is not None:
                contacts.append(change["old"])
            continue
        for field, change in entry["changes"].items():
            if field in state:
                state[field] = change["old"]
    if "contacts" in state:
        state["contacts"] = sorted(
            contacts, key=lambda c: (not c["is_primary"], c.get("created_at") or "", c["id"])
        )
    return state


def last_time(entries: Sequence[Mapping[str, Any]], *, touching: str | None = None) -> Any:
    """The latest `at` of the entries (those changing the field `touching`), or None."""
    times = [e["at"] for e in entries if touching is None or touching in e["changes"]]
    return max(times) if times else None
