"""App factory: `uvicorn --factory customers.main:create_app`."""

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import extensions
from customers.archive.ownership import on_identity_change
from customers.archive.router import router as archive_router
from customers.archive.schemas import CustomerRead
from customers.commerce.router import customers_router as commerce_router
from customers.commerce.router import orders_router
from customers.config import Settings
from customers.models import SCHEMA, directory
from customers.quality.router import router as quality_router
from customers.visitmemos import repository as visit_memos
from customers.visitmemos.service import apply_event as apply_visit_event
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app
from servicekit.auth import Principal
from servicekit.consumer import Follow

MIGRATIONS = Path(__file__).parent / "migrations"
VISITS_FEED = "visits"


async def _visits_card(session: AsyncSession, _: Principal, customer: CustomerRead) -> Any:
    return await visit_memos.section_of(session, customer.id)


def _wire_visit_memos() -> None:
    """The visits section (latest memos, last effective contact, next follow-up due) on the
    full file and the card."""
    extensions.file_sql_sections.register("visits", visit_memos.visits_section)
    extensions.card_sections.register("visits", _visits_card)


def spec() -> AppSpec:
    _wire_visit_memos()
    return AppSpec(
        name="customers",
        schema=SCHEMA,
        title="Fieldforce customers",
        description="The dynamic customer archive.",
        migrations_dir=MIGRATIONS,
        # Feature routers; their fixed paths never collide with `/{customer_id}` because the
        # archive matches that segment only when it is a UUID. The archive first: it holds the
        # hot reads (GET by id, the list), and routes are matched in order.
        routers=[
            archive_router,
            quality_router,
            commerce_router,
            orders_router,
        ],
        # Follows the gateway's identity feed into the kit's directory tables; the archive
        # reacts to moves and deactivations.
        directory=directory,
        identity_reactions=[on_identity_change],
        # The visits service's completed visits, for the memos on the card and the file.
        follows=[Follow(VISITS_FEED, apply_visit_event)],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
