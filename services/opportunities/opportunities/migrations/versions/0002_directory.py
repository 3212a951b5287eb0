"""The organisation directory: users and teams from the gateway's identity feed.

Revision ID: opportunities_0002
Revises: opportunities_0001
"""

from alembic import op

from servicekit.directory import create_directory_tables, drop_directory_tables

revision = "opportunities_0002"
down_revision = "opportunities_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_directory_tables(op, "opportunities")


def downgrade() -> None:
    drop_directory_tables(op, "opportunities")
