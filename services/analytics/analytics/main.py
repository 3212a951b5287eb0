"""App factory: `uvicorn --factory analytics.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from analytics.config import Settings
from analytics.models import SCHEMA, directory
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def spec() -> AppSpec:
    return AppSpec(
        name="analytics",
        schema=SCHEMA,
        title="Fieldforce analytics",
        description="Targets, KPIs, reports and alerts built from the other apps' events.",
        migrations_dir=MIGRATIONS,
        directory=directory,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
