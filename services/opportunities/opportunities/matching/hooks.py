"""The lifespan hook that keeps the customer index: follows the customers feed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from opportunities.matching.service import SOURCE, apply_customer_event
from servicekit.consumer import following


@contextlib.asynccontextmanager
async def follow_customers(app: FastAPI) -> AsyncIterator[None]:
    async with following(app, SOURCE, "opportunities.customers", apply_customer_event):
        yield
