"""The outbox's event payloads as `json`, kept as written (`servicekit.tables`).

Revision ID: analytics_0010
Revises: analytics_0009
"""

from collections.abc import Sequence

from alembic import op

from servicekit.migrations import set_outbox_payload_type

revision: str = "analytics_0010"
down_revision: str | None = "analytics_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    set_outbox_payload_type(op, "analytics", "json")


def downgrade() -> None:
    set_outbox_payload_type(op, "analytics", "jsonb")
