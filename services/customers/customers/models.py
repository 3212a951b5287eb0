"""Table models of the `customers` schema."""

from sqlmodel import SQLModel

from servicekit.db import make_registry
from servicekit.directory import Directory
from servicekit.tables import add_kit_tables

SCHEMA = "customers"
mapper_registry = make_registry(SCHEMA)
metadata = mapper_registry.metadata
kit_tables = add_kit_tables(metadata)
# Users and teams from the gateway's identity feed (owners' teams, managers, handovers).
directory = Directory(metadata)


class Base(SQLModel, registry=mapper_registry):
    """Base of this app's table models: its own registry, so its own MetaData."""
