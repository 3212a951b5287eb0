"""Sample schema: the organisation directory's tables.

Revision ID: kitsample_0002
Revises: kitsample_0001
"""

from alembic import op

from servicekit.directory import create_directory_tables, drop_directory_tables

revision = "kitsample_0002"
down_revision = "kitsample_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_directory_tables(op, "kitsample")


def downgrade() -> None:
    drop_directory_tables(op, "kitsample")
