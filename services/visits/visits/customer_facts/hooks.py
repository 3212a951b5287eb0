"""The lifespan hook that keeps the customers read model: follows the customers feed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from servicekit.consumer import following
from visits.customer_facts.service import SOURCE, apply_event


@contextlib.asynccontextmanager
async def follow_customers(app: FastAPI) -> AsyncIterator[None]:
    async with following(app, SOURCE, "visits.customers", apply_event):
        yield
