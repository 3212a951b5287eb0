"""The `visits` schema's metadata; each feature's `models.py` adds its tables to it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from servicekit.db import make_metadata, utcnow
from servicekit.directory import Directory
from servicekit.tables import add_kit_tables

SCHEMA = "visits"
metadata = make_metadata(SCHEMA)
kit_tables = add_kit_tables(metadata)
# Users and teams from the gateway's identity feed, for
# supervisors (the manager who approves a rep's plan) and the reps of a team tree.
directory = Directory(metadata)


def timestamps() -> list[sa.Column[Any]]:
    """`created_at` / `updated_at`, timezone-aware, set by the service (the app's clock)."""
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, default=utcnow),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, default=utcnow),
    ]


def money(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Numeric(16, 2), nullable=False, server_default="0")
