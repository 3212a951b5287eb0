"""The kit's tables: outbox, idempotency keys, consumer cursors.

Revision ID: visits_0001
Revises:
"""

from alembic import op

from servicekit.migrations import create_kit_tables, drop_kit_tables

revision = "visits_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables(op, "visits")


def downgrade() -> None:
    drop_kit_tables(op, "visits")
