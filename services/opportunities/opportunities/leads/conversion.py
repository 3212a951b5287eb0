"""Conversion: a lead in a rep's hands becomes an opportunity of a customer.

The customer is the lead's (matched on arrival), or one the caller names (`customer_id`, e.g.
a candidate of an earlier 409), or a new one created through the customers service's public
API under the converting user's authority (`servicekit.calls`): its codes, duplicate check,
owner rules and access apply exactly as if the user had created it. A likely duplicate comes
back as 409 with the candidates; the caller converts again naming one, or confirming.

The new customer carries the lead as its `external_ref` (`lead:<id>`), so a conversion that
failed after the customer was created finds it again on the next attempt instead of making a
second one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities import customers_api
from opportunities.config import Settings
from opportunities.leads import events
from opportunities.leads.exceptions import WrongState
from opportunities.leads.schemas import ConvertBody
from opportunities.leads.service import WITH_REP, Work, record_contact
from opportunities.pipeline import service as pipeline
from servicekit.auth import Principal
from servicekit.calls import CallerCalls
from servicekit.db import utcnow
from servicekit.errors import Forbidden, ValidationFailed

EXTERNAL_REF = "lead:{}"


def _customer_body(lead: dict[str, Any], body: ConvertBody) -> dict[str, Any]:
    given = body.customer
    name = (given.name if given else None) or lead["company"] or lead["contact_name"]
    region = (given.region if given else None) or lead["region"]
    if region is None:
        raise ValidationFailed.field(
            "customer.region", "the lead has no region; give the customer's"
        )
    customer: dict[str, Any] = {
        "name": name,
        "region": region,
        "industry": lead["industry"],
        "phone": lead["phone"],
        "email": lead["email"],
        "source": lead["source"],
        "external_ref": EXTERNAL_REF.format(lead["id"]),
        "owner_id": (given.owner_id if given and given.owner_id else None) or lead["owner_id"],
    }
    if given is not None and given.level is not None:
        customer["level"] = given.level
    if lead["contact_name"] and lead["company"]:
        customer["contacts"] = [
            {
                "name": lead["contact_name"],
                "phone": lead["phone"],
                "email": lead["email"],
                "is_primary": True,
            }
        ]
    return {k: v for k, v in customer.items() if v is not None}


async def convert(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    calls: CallerCalls,
    lead: dict[str, Any],
    body: ConvertBody,
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """`lead`: locked and the caller's to change. (lead, opportunity, customer created)."""
    if principal.kind == "key":
        principal.require_scope("opportunities:write")
    if lead["status"] == "converted":
        raise WrongState(
            "the lead is converted already", opportunity_id=str(lead["opportunity_id"])
        )
    if lead["status"] not in WITH_REP:
        raise WrongState(
            f"the lead is {lead['status']}; a lead converts once a rep has it "
            "(assigned or contacted)"
        )
    if principal.kind == "user" and principal.is_rep and lead["owner_id"] != principal.user_id:
        raise Forbidden("a rep converts their own leads")
    if body.customer_id is not None and body.confirm_duplicates:
        raise ValidationFailed.field(
            "confirm_duplicates", "either name the customer or confirm a new one"
        )

    at = pipeline.when(settings, body.at, lead["contacted_at"] or lead["received_at"], "at")
    created = False
    if body.customer_id is not None:
        await customers_api.require_visible(calls, body.customer_id, "customer_id")
        customer_id = body.customer_id
    elif lead["customer_id"] is not None and body.customer is None:
        customer_id = lead["customer_id"]
    else:
        customer_id, created = await customers_api.create(
            calls, _customer_body(lead, body), confirm_duplicates=body.confirm_duplicates
        )

    opportunity = await pipeline.open_opportunity(
        session,
        settings,
        principal.sub,
        customer_id=customer_id,
        name=body.name or lead["company"] or lead["contact_name"],
        owner_id=lead["owner_id"],
        team_id=lead["team_id"],
        lead_id=lead["id"],
        source=lead["source"],
        region=lead["region"],
        amount=body.amount,
        expected_close_on=body.expected_close_on,
        at=at,
    )
    work = Work(utcnow(), principal.sub, settings)
    if lead["contacted_at"] is None:
        # Converting is contact: the funnel never skips a step.
        record_contact(work, lead, at, by=principal.sub, note="converted")
    work.touch(lead)
    lead.update(
        status="converted",
        converted_at=at,
        customer_id=customer_id,
        opportunity_id=opportunity["id"],
    )
    work.emit(
        events.LEAD_CONVERTED,
        lead,
        at=at,
        contacted_at=lead["contacted_at"],
        opportunity_id=opportunity["id"],
        amount=opportunity["amount"],
        customer_created=created,
        by=principal.sub,
    )
    await work.flush(session)
    return lead, opportunity, created
