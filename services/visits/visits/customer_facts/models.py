"""The customers read model: what visits needs to know of each customer, as the customers
service's feed announced it (never read from its schema)."""

from __future__ import annotations

import sqlalchemy as sa

from visits.models import metadata

CUSTOMERS = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Uuid, nullable=True),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("lat", sa.Double, nullable=True),
    sa.Column("lon", sa.Double, nullable=True),
    # The customer's own version in the customers service: an older event never overwrites.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # A rep's book and a manager's teams, as the follow-up list and the access rule read them.
    sa.Index("ix_customers_owner_status", "owner_id", "status"),
    sa.Index("ix_customers_team_status", "team_id", "status"),
)

# Follow-up cadence per level (days), from the customers service's settings events; the
# migration seeds the documented defaults (A 7, B 14, C 30) until one arrives.
CADENCES = sa.Table(
    "cadences",
    metadata,
    sa.Column("level", sa.Text, primary_key=True),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
