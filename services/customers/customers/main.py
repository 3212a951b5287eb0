"""App factory: `uvicorn --factory customers.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from customers.config import Settings
from customers.models import SCHEMA
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
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
