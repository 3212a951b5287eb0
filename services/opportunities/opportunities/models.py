"""The `opportunities` schema: its metadata (each feature's `models.py` adds its tables to it),
the kit's tables and the organisation directory."""

from servicekit.db import make_metadata
from servicekit.directory import Directory
from servicekit.tables import add_kit_tables

SCHEMA = "opportunities"
metadata = make_metadata(SCHEMA)
kit_tables = add_kit_tables(metadata)
# Users and teams from the gateway's identity feed: the reps leads are assigned to, the teams
# a manager sees, the managers a deactivated rep's opportunities go to.
directory = Directory(metadata)
