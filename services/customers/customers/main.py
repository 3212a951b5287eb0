"""App factory: `uvicorn --factory customers.main:create_app`.

Every feature is wired here, explicitly: its routers, its lifespan hooks (the periodic passes),
and what it adds to the archive (sections of the full file and the card, the purchases behind
the proposed level, work after a create or a change, the duplicate check). Importing a
feature's module registers nothing.
"""

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from fastapi import FastAPI

from customers.archive import lifecycle
from customers.archive.extensions import STATE_KEY, ArchiveExtensions, Section
from customers.archive.ownership import on_identity_change
from customers.archive.router import router as archive_router
from customers.commerce import repository as commerce_repository
from customers.commerce import service as commerce_service
from customers.commerce.dependencies import CUSTOMERS_READ, ORDERS_READ
from customers.commerce.router import customers_router as commerce_router
from customers.commerce.router import orders_router, payments_router
from customers.config import Settings
from customers.models import SCHEMA, directory
from customers.products.router import router as products_router
from customers.quality import repository as quality_repository
from customers.quality import service as quality_service
from customers.quality.router import router as quality_router
from customers.visitmemos import repository as visit_memos
from customers.visitmemos.hooks import follow_visits
from customers.visitmemos.repository import VISITS_READ
from servicekit.app import AppSpec, Hook
from servicekit.app import create_app as build_app
from servicekit.jobs import Work, periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def archive_extensions() -> ArchiveExtensions:
    """What the other features add to the archive (see `customers.archive.extensions`)."""
    # Each section with the scope of the endpoint that serves the same data on its own.
    return ArchiveExtensions(
        file_sections={
            "contacts": Section(commerce_repository.contacts_section, CUSTOMERS_READ),
            "orders": Section(commerce_repository.orders_section, ORDERS_READ),
            "data_quality": Section(quality_repository.data_quality_section, CUSTOMERS_READ),
            "visits": Section(visit_memos.visits_section, VISITS_READ),
        },
        card_sections={
            "key_contact": Section(commerce_repository.key_contact_section, CUSTOMERS_READ),
            "purchases": Section(commerce_repository.purchases_card_section, ORDERS_READ),
            "last_orders": Section(commerce_repository.last_orders_section, ORDERS_READ),
            "visits": Section(visit_memos.visits_section, VISITS_READ),
        },
        purchases=commerce_repository.purchases_between,
        purchases_scope=ORDERS_READ,
        after_create=[commerce_service.create_initial_contacts],
        duplicate_finder=quality_service.find_duplicates,
        after_change=[quality_service.refresh_quality],
    )


def _every(name: str, work: Work) -> Hook:
    """A periodic pass of the service (`servicekit.jobs`), at the configured interval."""

    def hook(app: FastAPI) -> AbstractAsyncContextManager[None]:
        interval = app.state.settings.maintenance_interval_seconds
        return periodic(app, name, interval, work)

    return hook


TAGS = (
    {"name": "customers", "description": "The archive: records, their history and custody"},
    {"name": "change requests", "description": "Reps' changes that wait for a manager"},
    {"name": "customer settings", "description": "Codes, cadences, approvals, pool limits"},
    {"name": "contacts", "description": "The people of a customer"},
    {"name": "orders", "description": "Orders pushed by reps or an ERP"},
    {"name": "payments", "description": "Payments received against orders"},
    {"name": "products", "description": "The catalogue order lines name by sku"},
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
        routers=[
            archive_router,
            quality_router,
            commerce_router,
            orders_router,
            payments_router,
            products_router,
        ],
        state={STATE_KEY: archive_extensions()},
        # What time changes: customers whose last order got too old turn dormant; scores whose
        # freshness points ran out are computed again.
        hooks=[
            _every("customers.lifecycle", lifecycle.pass_once),
            _every("customers.data_quality", quality_service.refresh_due),
            # The visits service's completed visits, for the memos on the card and the file.
            follow_visits,
        ],
        # Follows the gateway's identity feed into the kit's directory tables; the archive
        # reacts to moves and deactivations.
        directory=directory,
        identity_reactions=[on_identity_change],
        tags=TAGS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
