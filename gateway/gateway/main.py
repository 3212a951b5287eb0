"""App factory: `uvicorn --factory gateway.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from gateway.config import Settings
from gateway.models import SCHEMA
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def spec() -> AppSpec:
    return AppSpec(
        name="gateway",
        schema=SCHEMA,
        title="Fieldforce gateway",
        description="The one public entry: identity, authentication, routing, rate limits.",
        migrations_dir=MIGRATIONS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
