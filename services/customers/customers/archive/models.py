"""Tables of the core archive (schema `customers`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from customers.models import Base
from servicekit.db import utcnow
from servicekit.ids import new_id

LEVELS = ("A", "B", "C")
STATUSES = ("active", "invalid", "merged")


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), **kw)


class Customer(Base, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        sa.CheckConstraint("level IN ('A', 'B', 'C')", name="level"),
        sa.CheckConstraint("status IN ('active', 'invalid', 'merged')", name="status"),
        # The list's hot shapes: a rep's page (owner [+ region]) and a manager's team page,
        # each in the default (created_at, id) keyset order.
        sa.Index("ix_customers_owner_region_created", "owner_id", "region", "created_at", "id"),
        sa.Index("ix_customers_owner_created", "owner_id", "created_at", "id"),
        sa.Index("ix_customers_team_created", "team_id", "created_at", "id"),
        sa.Index("ix_customers_created", "created_at", "id"),
        sa.Index("ix_customers_updated", "updated_at", "id"),
        sa.Index("ix_customers_region_level", "region", "level"),
        sa.Index("ix_customers_name", "name", "id"),
        sa.Index("ix_customers_tags", "tags", postgresql_using="gin"),
        sa.Index("ix_customers_normalized_phone", "normalized_phone"),
        sa.Index("ix_customers_normalized_email", "normalized_email"),
        sa.Index("ix_customers_region_normalized_name", "region", "normalized_name"),
        sa.Index(
            "uq_customers_source_external_ref",
            "source",
            "external_ref",
            unique=True,
            postgresql_where=sa.text("external_ref IS NOT NULL"),
            postgresql_nulls_not_distinct=True,
        ),
        # Only a minority are ever invalid or merged; a partial index keeps them cheap to find.
        sa.Index(
            "ix_customers_status_not_active",
            "status",
            postgresql_where=sa.text("status <> 'active'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    code: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    name: str
    region: str
    level: str = "C"
    industry: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    source: str | None = None
    tags: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(ARRAY(sa.Text), nullable=False, server_default="{}"),
    )
    estimated_potential: Decimal | None = Field(default=None, sa_type=sa.Numeric(16, 2))
    # The customer's point ({"lat": ..., "lon": ...}, WGS 84 degrees): visits measures check-ins
    # against it.
    location: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    status: str = "active"
    invalid_reason: str | None = None
    merged_into_id: uuid.UUID | None = None
    external_ref: str | None = None
    normalized_phone: str | None = None
    normalized_email: str | None = None
    normalized_name: str | None = None
    version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    created_by: str | None = None
    updated_by: str | None = None


class CodeCounter(Base, table=True):
    """The last sequence number handed out per code prefix.

    Incremented inside the creating transaction: a rollback undoes the increment, so numbers
    are gap-free; the row lock orders concurrent creates of one prefix.
    """

    __tablename__ = "code_counters"
    prefix: str = Field(primary_key=True)
    last_value: int = Field(sa_type=sa.BigInteger)


class CustomerHistory(Base, table=True):
    """One row per change: who, when, which fields, old -> new (JSON values)."""

    __tablename__ = "customer_history"
    __table_args__ = (sa.Index("ix_customer_history_customer", "customer_id", "id"),)

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.Identity(always=True), primary_key=True),
    )
    customer_id: uuid.UUID
    version: int
    at: datetime = _ts()
    actor_id: str | None = None
    actor_kind: str = "user"
    action: str
    changes: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    comment: str | None = None


class OwnershipPeriod(Base, table=True):
    """The custody ledger: one row per owner (null = the pool) with from/to."""

    __tablename__ = "ownership_ledger"
    __table_args__ = (
        sa.Index("ix_ownership_ledger_customer", "customer_id", "started_at"),
        # Claims per day are counted from here.
        sa.Index("ix_ownership_ledger_owner_started", "owner_id", "started_at"),
        sa.Index(
            "uq_ownership_ledger_open",
            "customer_id",
            unique=True,
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.Identity(always=True), primary_key=True),
    )
    customer_id: uuid.UUID
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    started_at: datetime = _ts()
    ended_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    reason: str
    kind: str
    actor_id: str | None = None
    end_reason: str | None = None
    ended_by: str | None = None


class ChangeRequest(Base, table=True):
    """A rep's change of key fields, waiting for a manager of the rep's team."""

    __tablename__ = "change_requests"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        sa.Index("ix_change_requests_team_status", "team_id", "status", "created_at"),
        sa.Index("ix_change_requests_customer", "customer_id", "created_at"),
        sa.Index("ix_change_requests_requested_by", "requested_by", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID
    requested_by: str
    team_id: uuid.UUID | None = None
    changes: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    base_version: int
    reason: str | None = None
    status: str = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    comment: str | None = None
    created_at: datetime = _ts()


class ArchiveSettings(Base, table=True):
    """The admin-managed settings: one row (id = 1), a JSON document validated on write."""

    __tablename__ = "settings"
    id: int = Field(default=1, primary_key=True)
    data: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    version: int = 1
    updated_at: datetime = _ts()
    updated_by: str | None = None


CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
HISTORY: sa.Table = CustomerHistory.__table__  # type: ignore[attr-defined]
LEDGER: sa.Table = OwnershipPeriod.__table__  # type: ignore[attr-defined]
COUNTERS: sa.Table = CodeCounter.__table__  # type: ignore[attr-defined]
CHANGE_REQUESTS: sa.Table = ChangeRequest.__table__  # type: ignore[attr-defined]
SETTINGS: sa.Table = ArchiveSettings.__table__  # type: ignore[attr-defined]
