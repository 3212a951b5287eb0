"""Table models of the `identity` schema."""

from sqlmodel import SQLModel

from servicekit.db import make_registry
from servicekit.tables import add_kit_tables

SCHEMA = "identity"
mapper_registry = make_registry(SCHEMA)
metadata = mapper_registry.metadata
kit_tables = add_kit_tables(metadata)


class Base(SQLModel, registry=mapper_registry):
    """Base of this app's table models: its own registry, so its own MetaData."""
