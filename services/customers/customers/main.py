"""App factory: `uvicorn --factory customers.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from customers.archive.ownership import on_identity_change
from customers.archive.router import router as archive_router
from customers.commerce.router import customers_router as commerce_router
from customers.commerce.router import orders_router
from customers.config import Settings
from customers.models import SCHEMA, directory
from customers.quality.router import router as quality_router
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def spec() -> AppSpec:
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
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
