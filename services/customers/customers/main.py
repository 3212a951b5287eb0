"""App factory: `uvicorn --factory customers.main:create_app`.

Every feature is wired here, explicitly: its routers, its lifespan hooks, and what it adds to
the archive (sections of the full file and the card, the purchases behind the proposed level,
work after a create, the duplicate check). Importing a feature's module registers nothing.
"""

from pathlib import Path

from fastapi import FastAPI

from customers.archive.extensions import STATE_KEY, ArchiveExtensions
from customers.archive.ownership import on_identity_change
from customers.archive.router import router as archive_router
from customers.commerce import repository as commerce_repository
from customers.commerce import service as commerce_service
from customers.commerce.router import customers_router as commerce_router
from customers.commerce.router import orders_router
from customers.config import Settings
from customers.models import SCHEMA, directory
from customers.quality import repository as quality_repository
from customers.quality import service as quality_service
from customers.quality.router import router as quality_router
from customers.visitmemos import repository as visit_memos
from customers.visitmemos.hooks import follow_visits
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def archive_extensions() -> ArchiveExtensions:
    """What the other features add to the archive (see `customers.archive.extensions`)."""
    return ArchiveExtensions(
        file_sections={
            "contacts": commerce_repository.contacts_section,
            "orders": commerce_repository.orders_section,
            "data_quality": quality_repository.data_quality_section,
            "visits": visit_memos.visits_section,
        },
        card_sections={
            "key_contact": commerce_repository.key_contact_section,
            "last_orders": commerce_repository.last_orders_section,
            "visits": visit_memos.visits_section,
        },
        purchases=commerce_repository.purchases_since,
        after_create=[commerce_service.create_initial_contacts],
        duplicate_finder=quality_service.find_duplicates,
    )


TAGS = (
    {"name": "customers", "description": "The archive: records, their history and custody"},
    {"name": "change requests", "description": "Reps' changes that wait for a manager"},
    {"name": "customer settings", "description": "Codes, cadences, approvals, pool limits"},
    {"name": "contacts", "description": "The people of a customer"},
    {"name": "orders", "description": "Orders pushed by reps or an ERP"},
    {"name": "payments", "description": "Payments received against orders"},
    {"name": "data quality", "description": "Incomplete records and duplicates"},
    {"name": "import and export", "description": "Customers in bulk, as JSON or CSV"},
)


def spec() -> AppSpec:
    return AppSpec(
        name="customers",
        schema=SCHEMA,
        title="Fieldforce customers",
        description="The dynamic customer archive.",
        migrations_dir=MIGRATIONS,
        routers=[archive_router, quality_router, commerce_router, orders_router],
        state={STATE_KEY: archive_extensions()},
        # The visits service's completed visits, for the memos on the card and the file.
        hooks=[follow_visits],
        # Follows the gateway's identity feed into the kit's directory tables; the archive
        # reacts to moves and deactivations.
        directory=directory,
        identity_reactions=[on_identity_change],
        tags=TAGS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
