"""App factory: `uvicorn --factory opportunities.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from opportunities.config import Settings
from opportunities.models import SCHEMA, directory
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def spec() -> AppSpec:
    return AppSpec(
        name="opportunities",
        schema=SCHEMA,
        title="Fieldforce opportunities",
        description="Lead intake, scoring, assignment and the stage pipeline.",
        migrations_dir=MIGRATIONS,
        directory=directory,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
