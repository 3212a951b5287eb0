"""Table models of the `visits` schema."""

from sqlmodel import SQLModel

from servicekit.db import make_registry
from servicekit.directory import Directory
from servicekit.tables import add_kit_tables

SCHEMA = "visits"
mapper_registry = make_registry(SCHEMA)
metadata = mapper_registry.metadata
kit_tables = add_kit_tables(metadata)
# Users and teams from the gateway's identity feed, for
# supervisors (the manager who approves a rep's plan) and the reps of a team tree.
directory = Directory(metadata)


class Base(SQLModel, registry=mapper_registry):
    """Base of this app's table models: its own registry, so its own MetaData."""
