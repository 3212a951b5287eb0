"""The organisation directory: users and teams from the gateway's identity feed.

Revision ID: visits_0002
Revises: visits_0001
"""

from alembic import op

from servicekit.directory import create_directory_tables, drop_directory_tables

revision = "visits_0002"
down_revision = "visits_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_directory_tables(op, "visits")


def downgrade() -> None:
    drop_directory_tables(op, "visits")
