"""uvicorn `--factory` entry points for the project side of the benchmarks."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.settings import KitSettings
from servicekit.testing.sample.app import build


def kitsample() -> FastAPI:
    """The kit's sample app with production defaults; DATABASE_URL and
    INTERNAL_TOKEN_PUBLIC_KEY come from the environment, as in the compose stack."""
    return build(KitSettings(app_name="kitsample"))
