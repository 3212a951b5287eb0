"""The outbox's event payloads as `json`, kept as written (`servicekit.tables`).

Revision ID: opportunities_0005
Revises: opportunities_0004
"""

from collections.abc import Sequence

from alembic import op

from servicekit.migrations import set_outbox_payload_type

revision: str = "opportunities_0005"
down_revision: str | None = "opportunities_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    set_outbox_payload_type(op, "opportunities", "json")


def downgrade() -> None:
    set_outbox_payload_type(op, "opportunities", "jsonb")
