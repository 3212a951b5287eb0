"""Applying the feeds: each page of events becomes facts, and the rollups follow exactly.

One handler per followed feed, applied page by page in the consumer's transaction (the facts,
the rollups, the applied ids and the cursor commit together). Every handler is idempotent by
itself, not only through the consumer's bookkeeping: facts are keyed by the producer's ids or
the event's, and the rollups change by the difference between a record's contribution before
and after the page, so a page applied twice changes nothing the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts import events as ev
from analytics.facts import repository
from analytics.periods import Calendar, Kind, containing, starts
from analytics.rollups import service as rollups
from analytics.rollups.contributions import (
    Attribution,
    Contribution,
    VisitFact,
    plan_items_contribution,
    visit_contribution,
)
from servicekit.directory import DirectoryChange
from servicekit.outbox import Event


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    """The customer facts every customer event repeats."""
    out: dict[str, Any] = {}
    for key in ("code", "name", "region", "level", "status"):
        if key in data:
            out[key] = ev.region(data[key]) if key == "region" else data[key]
    for key in ("owner_id", "team_id"):
        if key in data:
            out[key] = ev.as_uuid(data[key])
    return out


_STATUS_OF = {
    "customer.dormant": "dormant",
    "customer.lost": "lost",
    "customer.reactivated": "active",
}


class CustomersFeed:
    """customers, orders and payments (the customers app's feed)."""

    def __init__(self, calendar: Calendar, active_window_days: int) -> None:
        self.calendar = calendar
        self.window = active_window_days

    async def __call__(self, session: AsyncSession, page: Sequence[Event]) -> None:
        await rollups.lock(session)
        touched = await self._customers(session, page)
        await rollups.refresh_customers(
            session, touched, self.window, lambda: self._apply(session, page)
        )

    async def _customers(self, session: AsyncSession, page: Sequence[Event]) -> set[uuid.UUID]:
        touched: set[uuid.UUID] = set()
        for event in page:
            data = event.data
            for key in ("customer_id", "merged_into_id"):
                if (found := ev.as_uuid(data.get(key))) is not None:
                    touched.add(found)
            if event.type.startswith("customer.") and (found := ev.as_uuid(data.get("id"))):
                touched.add(found)
            if event.type in (ev.ORDER_CANCELLED, ev.ORDER_AMENDED) and "customer_id" not in data:
                order = ev.as_uuid(data.get("order_id"))
                if order is not None and (owner := await repository.order_customer(session, order)):
                    touched.add(owner)
        return touched

    async def _apply(self, session: AsyncSession, page: Sequence[Event]) -> None:
        for event in page:
            data, kind = event.data, event.type
            if kind == ev.CUSTOMER_CREATED:
                await self._created(session, event)
            elif kind in ev.CUSTOMER_CHANGES:
                await self._changed(session, event, data)
            elif kind == ev.CUSTOMER_MERGED:
                await self._changed(session, event, data)
                survivor_id = ev.as_uuid(data.get("merged_into_id"))
                duplicate_id = ev.as_uuid(data.get("id"))
                if survivor_id is not None and duplicate_id is not None:
                    if isinstance(data.get("survivor"), dict):
                        await self._changed(
                            session, event, data["survivor"], version_of=survivor_id
                        )
                    await repository.move_commerce(session, duplicate_id, survivor_id)
            elif kind == ev.ORDER_PLACED:
                await self._order(session, event)
            elif kind in (ev.ORDER_CANCELLED, ev.ORDER_AMENDED):
                await self._order_changed(session, event)
            elif kind == ev.PAYMENT_RECEIVED:
                await self._payment(session, event)
            elif kind == ev.PAYMENT_REVERSED:
                payment = ev.as_uuid(data.get("payment_id") or data.get("id"))
                if payment is not None:
                    await repository.reverse_payment(session, payment)

    async def _created(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        customer_id = ev.as_uuid(data.get("id") or event.subject)
        if customer_id is None:
            return
        facts = _facts(data)
        at = ev.occurred(event, "created_at")
        await repository.upsert_customer(
            session,
            {
                "id": customer_id,
                **facts,
                "created_at": at,
                "created_day": self.calendar.day(at),
                "created_owner_id": facts.get("owner_id"),
                "created_team_id": facts.get("team_id"),
                "created_region": facts.get("region"),
                "updated_at": event.time,
            },
        )
        await self._version(session, event, customer_id, facts, at)

    async def _changed(
        self,
        session: AsyncSession,
        event: Event,
        data: dict[str, Any],
        *,
        version_of: uuid.UUID | None = None,
    ) -> None:
        customer_id = version_of or ev.as_uuid(data.get("id") or event.subject)
        if customer_id is None:
            return
        facts = _facts(data)
        if event.type in _STATUS_OF and "status" not in data:
            facts["status"] = _STATUS_OF[event.type]
        if event.type == "customer.data_incomplete":
            facts["data_incomplete"] = True
        elif event.type == "customer.data_completed":
            facts["data_incomplete"] = False
        score = data.get("score")
        if event.type in ("customer.data_incomplete", "customer.data_completed") and isinstance(
            score, int
        ):
            facts["quality_score"] = score
        await repository.upsert_customer(
            session, {"id": customer_id, **facts, "updated_at": event.time}
        )
        await self._version(session, event, customer_id, facts, ev.occurred(event), version_of)

    async def _version(
        self,
        session: AsyncSession,
        event: Event,
        customer_id: uuid.UUID,
        facts: dict[str, Any],
        at: Any,
        salt: uuid.UUID | None = None,
    ) -> None:
        # A merge writes two versions from one event (the duplicate's and the survivor's).
        event_id = event.id if salt is None else uuid.uuid5(event.id, str(salt))
        await repository.add_version(
            session,
            {
                "event_id": event_id,
                "customer_id": customer_id,
                "at": at,
                "day": self.calendar.day(at),
                "owner_id": facts.get("owner_id"),
                "team_id": facts.get("team_id"),
                "region": facts.get("region"),
                "level": facts.get("level"),
                "status": facts.get("status") or "active",
            },
        )

    async def _order(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        order_id = ev.as_uuid(data.get("order_id"))
        customer_id = ev.as_uuid(data.get("customer_id"))
        day = ev.as_date(data.get("order_date"))
        if order_id is None or customer_id is None or day is None:
            return
        await repository.ensure_customers(session, [{"id": customer_id, "updated_at": event.time}])
        await repository.add_order(
            session,
            {
                "id": order_id,
                "customer_id": customer_id,
                "day": day,
                "owner_id": ev.as_uuid(data.get("owner_id")),
                "team_id": ev.as_uuid(data.get("team_id")),
                "region": ev.region(data.get("region")),
                "amount": ev.as_decimal(data.get("amount")) or Decimal(0),
                "gross_profit": ev.as_decimal(data.get("gross_profit")),
            },
            _lines(order_id, data.get("lines")),
        )

    async def _order_changed(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        order_id = ev.as_uuid(data.get("order_id"))
        if order_id is None:
            return
        values: dict[str, Any] = {}
        if event.type == ev.ORDER_CANCELLED:
            values["cancelled"] = True
        else:
            if (amount := ev.as_decimal(data.get("amount"))) is not None:
                values["amount"] = amount
            if "gross_profit" in data:
                values["gross_profit"] = ev.as_decimal(data["gross_profit"])
            if (day := ev.as_date(data.get("order_date"))) is not None:
                values["day"] = day
        if values:
            lines = _lines(order_id, data["lines"]) if "lines" in data else None
            await repository.change_order(session, order_id, values, lines)

    async def _payment(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        payment_id = ev.as_uuid(data.get("payment_id"))
        order_id = ev.as_uuid(data.get("order_id"))
        customer_id = ev.as_uuid(data.get("customer_id"))
        day = ev.as_date(data.get("received_on"))
        if payment_id is None or order_id is None or customer_id is None or day is None:
            return
        await repository.ensure_customers(session, [{"id": customer_id, "updated_at": event.time}])
        await repository.add_payment(
            session,
            {
                "id": payment_id,
                "order_id": order_id,
                "customer_id": customer_id,
                "day": day,
                "owner_id": ev.as_uuid(data.get("owner_id")),
                "team_id": ev.as_uuid(data.get("team_id")),
                "region": ev.region(data.get("region")),
                "amount": ev.as_decimal(data.get("amount")) or Decimal(0),
            },
        )


def _lines(order_id: uuid.UUID, lines: Any) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(lines or []):
        if not isinstance(line, dict) or not line.get("product"):
            continue
        quantity = ev.as_decimal(line.get("quantity")) or Decimal(0)
        price = ev.as_decimal(line.get("unit_price")) or Decimal(0)
        amount = ev.as_decimal(line.get("amount"))
        out.append(
            {
                "order_id": order_id,
                "line": n,
                "product": str(line["product"]),
                "amount": (amount if amount is not None else quantity * price).quantize(
                    Decimal("0.01")
                ),
            }
        )
    return out


class VisitsFeed:
    """Completed visits, visit plans and the field reports (the visits app's feed)."""

    def __init__(self, calendar: Calendar, active_window_days: int) -> None:
        self.calendar = calendar
        self.window = active_window_days

    async def __call__(self, session: AsyncSession, page: Sequence[Event]) -> None:
        await rollups.lock(session)
        visits: list[dict[str, Any]] = []
        plans: dict[uuid.UUID, Event] = {}
        for event in page:
            if event.type == ev.VISIT_COMPLETED:
                row = self._visit(event.data)
                if row is not None:
                    visits.append(row)
            elif event.type in ev.PLAN_EVENTS:
                plan_id = ev.as_uuid(event.data.get("id"))
                if plan_id is not None:
                    plans[plan_id] = event  # the page's last word on the plan
            elif event.type in ev.DAILY_REPORT_EVENTS or event.type in ev.CASE_EVENTS:
                await self._report(session, event)

        items = [(r["plan_item_id"], r["id"]) for r in visits if r["plan_item_id"] is not None]
        affected = {*plans, *await repository.plans_of_items(session, [i for i, _ in items])}
        before = await repository.plan_items(session, affected)
        for plan_id, event in plans.items():
            await repository.replace_plan_items(session, plan_id, self._items(plan_id, event.data))
        # A visit while the customer was dormant or lost changes its redevelopment figures,
        # which are part of its own contribution (rollups.contributions).
        reengaged = {
            r["customer_id"] for r in visits if r["customer_status"] in ev.REENGAGED_STATUSES
        }
        unchanged = await rollups.contribution_of(session, reengaged, self.window)
        new = await repository.add_visits(session, visits)
        fresh = [r for r in visits if r["id"] in new]
        await repository.mark_visited(session, {r["customer_id"] for r in fresh})
        fulfilled = [(r["plan_item_id"], r["id"]) for r in fresh if r["plan_item_id"] is not None]
        affected |= set(await repository.fulfil_items(session, fulfilled))
        after = await repository.plan_items(session, affected)

        delta = Contribution()
        delta.add(plan_items_contribution(i for items in after.values() for i in items))
        delta.add(plan_items_contribution(i for items in before.values() for i in items), -1)
        for row in fresh:
            visit_contribution(
                VisitFact(
                    Attribution(row["rep_id"], row["team_id"], row["region"]),
                    row["day"],
                    row["effective"],
                    row["order_taken"],
                ),
                delta,
            )
        await rollups.count_visited(session, fresh, delta)
        delta.add(await rollups.contribution_of(session, reengaged, self.window))
        delta.add(unchanged, -1)
        await rollups.apply(session, delta.pruned())

    def _visit(self, data: dict[str, Any]) -> dict[str, Any] | None:
        visit_id = ev.as_uuid(data.get("id"))
        rep_id = ev.as_uuid(data.get("rep_id"))
        customer_id = ev.as_uuid(data.get("customer_id"))
        check_in = ev.as_time(data.get("check_in_at"))
        if visit_id is None or rep_id is None or customer_id is None or check_in is None:
            return None
        return {
            "id": visit_id,
            "rep_id": rep_id,
            "team_id": ev.as_uuid(data.get("team_id")),
            "customer_id": customer_id,
            "region": ev.region(data.get("region")),
            "level": data.get("level"),
            "customer_status": data.get("customer_status"),
            "purpose": data.get("purpose"),
            "channel": data.get("channel"),
            # The visits app's own date of the visit; its check-in's day in older payloads.
            "day": ev.as_date(data.get("visit_date")) or self.calendar.day(check_in),
            "check_in_at": check_in,
            "effective": bool(data.get("effective")),
            "order_taken": bool(data.get("order_taken")),
            "order_amount": ev.as_decimal(data.get("order_amount")) or Decimal(0),
            "collected_amount": ev.as_decimal(data.get("collected_amount")) or Decimal(0),
            "plan_item_id": ev.as_uuid(data.get("plan_item_id")),
            "competitor_news": ev.text(data.get("competitor_news")),
            "customer_feedback": ev.text(data.get("customer_feedback")),
        }

    def _items(self, plan_id: uuid.UUID, data: dict[str, Any]) -> list[dict[str, Any]]:
        rep_id = ev.as_uuid(data.get("rep_id"))
        day = ev.as_date(data.get("plan_date"))
        if rep_id is None or day is None:
            return []
        approved = data.get("status") == "approved"
        rows = []
        for item in data.get("items") or []:
            item_id = ev.as_uuid(item.get("id")) if isinstance(item, dict) else None
            if item_id is None:
                continue
            rows.append(
                {
                    "id": item_id,
                    "plan_id": plan_id,
                    "rep_id": rep_id,
                    "team_id": ev.as_uuid(data.get("team_id")),
                    "day": day,
                    "customer_id": ev.as_uuid(item.get("customer_id")),
                    "purpose": item.get("purpose"),
                    "approved": approved,
                }
            )
        return rows

    async def _report(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        report_id = ev.as_uuid(data.get("id"))
        day = ev.as_date(data.get("report_date") or data.get("raised_on")) or self.calendar.day(
            event.time
        )
        if report_id is None:
            return
        kind = event.type.split(".", 1)[0]
        values = {
            "id": report_id,
            "kind": kind,
            "rep_id": ev.as_uuid(data.get("rep_id")),
            "team_id": ev.as_uuid(data.get("team_id")),
            "customer_id": ev.as_uuid(data.get("customer_id")),
            "day": day,
            "status": data.get("status"),
            "severity": data.get("severity"),
            "data": data,
            "updated_at": event.time,
        }
        # Only the events that carry them set them (a sign-off does not repeat them).
        for column, key in ev.REPORT_REMARKS:
            if key in data:
                values[column] = ev.text(data[key])
        await repository.upsert_field_report(session, values)
        if event.type in ev.CASE_EVENTS:
            step = event.type.split(".", 1)[1]
            at = ev.occurred(event, *ev.CASE_STEP_TIMES.get(event.type, ()))
            await repository.add_case_step(
                session,
                {
                    "event_id": event.id,
                    "case_id": report_id,
                    "kind": kind,
                    "step": step,
                    "rep_id": values["rep_id"],
                    "team_id": values["team_id"],
                    "at": at,
                    # A case is raised on the day its report names (raised_on).
                    "day": day if step == "raised" else self.calendar.day(at),
                },
            )


class OpportunitiesFeed:
    """Leads and opportunities with their stage moves (the opportunities app's feed)."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar

    async def __call__(self, session: AsyncSession, page: Sequence[Event]) -> None:
        for event in page:
            if event.type.startswith(ev.LEAD_PREFIX):
                await self._lead(session, event)
            elif event.type.startswith(ev.OPPORTUNITY_PREFIX):
                await self._opportunity(session, event)

    async def _lead(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        lead_id = ev.as_uuid(data.get("id"))
        received = ev.as_time(data.get("received_at"))
        if lead_id is None or received is None:
            return
        status = data.get("status")
        values: dict[str, Any] = {
            "id": lead_id,
            "source": data.get("source"),
            "status": status,
            "owner_id": ev.as_uuid(data.get("owner_id")),
            "team_id": ev.as_uuid(data.get("team_id")),
            "region": ev.region(data.get("region")),
            "received_at": received,
            "received_day": self.calendar.day(received),
            "invalid": status == "invalid",
            "contacted_at": None,
            "converted_at": None,
            "opportunity_id": None,
        }
        if event.type == ev.LEAD_CONTACTED:
            values["contacted_at"] = ev.occurred(event, "at")
        elif event.type == ev.LEAD_CONVERTED:
            values["converted_at"] = ev.occurred(event, "at")
            values["contacted_at"] = ev.as_time(data.get("contacted_at"))
            values["opportunity_id"] = ev.as_uuid(data.get("opportunity_id"))
        # The first contact and the conversion, once known, stay (later events repeat the
        # lead's facts without them).
        await repository.upsert_lead(
            session, values, keep=("contacted_at", "converted_at", "opportunity_id")
        )

    async def _opportunity(self, session: AsyncSession, event: Event) -> None:
        data = event.data
        opportunity_id = ev.as_uuid(data.get("id"))
        created = ev.as_time(data.get("created_at"))
        if opportunity_id is None or created is None:
            return
        stage = str(data.get("stage") or "")
        won_at = ev.as_time(data.get("won_at")) if stage == "won" else None
        who = {
            "owner_id": ev.as_uuid(data.get("owner_id")),
            "team_id": ev.as_uuid(data.get("team_id")),
            "region": ev.region(data.get("region")),
        }
        await repository.upsert_opportunity(
            session,
            {
                "id": opportunity_id,
                "lead_id": ev.as_uuid(data.get("lead_id")),
                "customer_id": ev.as_uuid(data.get("customer_id")),
                **who,
                "source": data.get("source"),
                "amount": ev.as_decimal(data.get("amount")),
                "stage": stage,
                "created_at": created,
                "won_at": won_at,
                "won_day": None if won_at is None else self.calendar.day(won_at),
                **{k: data[k] for k in ("next_action",) if k in data},
                **{k: ev.as_date(data[k]) for k in ("next_action_on",) if k in data},
            },
        )
        if event.type != ev.OPPORTUNITY_STAGE_CHANGED:
            return
        left, to = str(data.get("from_stage") or ""), str(data.get("to_stage") or stage)
        if not left or left in ev.CLOSED_STAGES:
            return  # a reopening leaves no pipeline stage
        at = ev.occurred(event, "at")
        if to in ev.CLOSED_STAGES and (closed := ev.as_time(data.get("closed_at"))) is not None:
            at = closed
        forward = to == "won" or (to not in ev.CLOSED_STAGES and not data.get("backward"))
        await repository.add_stage_move(
            session,
            {
                "event_id": event.id,
                "opportunity_id": opportunity_id,
                "from_stage": left,
                "to_stage": to,
                "forward": forward,
                "at": at,
                "day": self.calendar.day(at),
                **who,
            },
        )


async def on_identity_change(session: AsyncSession, change: DirectoryChange) -> None:
    """Keep who was in which team as what, from when (the directory keeps only the present)."""
    now, before = change.user, change.previous
    if now is None:
        return
    same = before is not None and (before.team_id, before.role, before.active) == (
        now.team_id,
        now.role,
        now.active,
    )
    if same:
        return
    at = change.event.time
    if before is not None:
        await repository.close_membership(session, now.id, at)
    if now.active:
        await repository.open_membership(
            session,
            {
                "id": change.event.id,
                "user_id": now.id,
                "team_id": now.team_id,
                "role": now.role,
                # What we learn of a user first holds from the beginning: the feed announces
                # users when they are created, and facts may have been imported from before.
                "valid_from": None if before is None else at,
                "valid_to": None,
            },
        )


def visit_periods(day: date) -> Iterable[tuple[Kind, date, date]]:
    for kind, start in starts(day):
        yield kind, start, containing(kind, day).end
