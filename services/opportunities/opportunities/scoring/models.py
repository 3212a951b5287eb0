"""Scoring models: versioned data (criteria, options, points, threshold)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from opportunities.models import metadata

MODEL_STATUSES = ("draft", "active", "challenger", "retired")
TS = sa.DateTime(timezone=True)

SCORING_MODELS = sa.Table(
    "scoring_models",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # The model's version number: 1, 2, 3, ... in order of creation.
    sa.Column("version", sa.Integer, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("criteria", JSONB, nullable=False),
    sa.Column("threshold", sa.Integer, nullable=False),
    sa.Column("max_points", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # Set when it first scored a lead: from then on it never changes.
    sa.Column("used_at", TS),
    sa.Column("activated_at", TS),
    # The record's revision, for ETag / If-Match (`version` is the model's number).
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.CheckConstraint("status IN ('draft', 'active', 'challenger', 'retired')", name="status"),
    # One active model decides; at most one challenger runs beside it.
    sa.Index(
        "uq_scoring_models_active",
        "status",
        unique=True,
        postgresql_where=sa.text("status IN ('active', 'challenger')"),
    ),
)
