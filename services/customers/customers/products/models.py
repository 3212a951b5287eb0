"""The catalogue's table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from customers.models import Base
from servicekit.db import utcnow
from servicekit.ids import new_id


def _ts() -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class Product(Base, table=True):
    __tablename__ = "products"
    __table_args__ = (
        sa.Index("ix_products_category_sku", "category", "sku"),
        sa.Index("ix_products_created", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    sku: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    name: str
    category: str | None = None
    unit: str | None = None
    active: bool = True
    version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    created_by: str | None = None
    updated_by: str | None = None


PRODUCTS: sa.Table = Product.__table__  # type: ignore[attr-defined]
