"""The catalogue's contract: ProductCreate / ProductUpdate (all optional) / ProductRead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from customers.quality.schemas import ImportOutcomeKind
from servicekit.fields import Omittable
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT

Sku = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^\S+$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductCreate(_Input):
    sku: Sku
    name: Name
    category: Label | None = None
    unit: Label | None = None
    active: bool = True


class ProductUpdate(_Input):
    """The sku never changes: order lines name a product by it."""

    name: Omittable[Name] = None
    category: Label | None = None
    unit: Label | None = None
    active: Omittable[bool] = None


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    name: str
    category: str | None
    unit: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ProductListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
    active: bool | None = None
    category: str | None = Field(None, max_length=100)


class ProductImportOutcome(BaseModel):
    row: int
    outcome: ImportOutcomeKind
    id: uuid.UUID | None = None
    error: str | None = None


class ProductImportResult(BaseModel):
    results: list[ProductImportOutcome]
    created: int
    updated: int
    unchanged: int
    errors: int
