"""The lifespan hook that keeps the visit memos: follows the visits service's feed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from customers.visitmemos.service import SOURCE, apply_event
from servicekit.consumer import following


@contextlib.asynccontextmanager
async def follow_visits(app: FastAPI) -> AsyncIterator[None]:
    async with following(app, SOURCE, "customers.visits", apply_event):
        yield
