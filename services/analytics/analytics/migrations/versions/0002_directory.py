"""The organisation directory: users and teams from the gateway's identity feed.

Revision ID: analytics_0002
Revises: analytics_0001
"""

from alembic import op

from servicekit.directory import create_directory_tables, drop_directory_tables

revision = "analytics_0002"
down_revision = "analytics_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_directory_tables(op, "analytics")


def downgrade() -> None:
    drop_directory_tables(op, "analytics")
