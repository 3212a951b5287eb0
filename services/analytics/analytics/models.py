"""The `analytics` schema's metadata; each feature's `models.py` adds its tables to it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from servicekit.db import make_metadata
from servicekit.directory import Directory
from servicekit.tables import add_kit_tables

SCHEMA = "analytics"
metadata = make_metadata(SCHEMA)
kit_tables = add_kit_tables(metadata)
# Users and teams from the gateway's identity feed: the team tree a team's scope covers,
# the teams a manager sees, and the tree targets are decomposed down.
directory = Directory(metadata)


def money(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name, sa.Numeric(16, 2), nullable=nullable, server_default=None if nullable else "0"
    )


def count(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")
