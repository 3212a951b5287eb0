"""App factory: `uvicorn --factory visits.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from servicekit.app import AppSpec
from servicekit.app import create_app as build_app
from visits.config import Settings
from visits.models import SCHEMA, directory

MIGRATIONS = Path(__file__).parent / "migrations"


def spec() -> AppSpec:
    return AppSpec(
        name="visits",
        schema=SCHEMA,
        title="Fieldforce visits",
        description="Visit plans, visit logs, daily reports, market and complaint reports.",
        migrations_dir=MIGRATIONS,
        directory=directory,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
