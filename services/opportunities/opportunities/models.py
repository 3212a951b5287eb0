"""Table models of the `opportunities` schema."""

from sqlmodel import SQLModel

from servicekit.db import make_registry
from servicekit.tables import add_kit_tables

SCHEMA = "opportunities"
mapper_registry = make_registry(SCHEMA)
metadata = mapper_registry.metadata
kit_tables = add_kit_tables(metadata)


class Base(SQLModel, registry=mapper_registry):
    """Base of this app's table models: its own registry, so its own MetaData."""
