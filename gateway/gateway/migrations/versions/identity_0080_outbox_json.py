"""The outbox's event payloads as `json`, kept as written (`servicekit.tables`).

Revision ID: identity_0080
Revises: identity_0070
"""

from collections.abc import Sequence

from alembic import op

from servicekit.migrations import set_outbox_payload_type

revision: str = "identity_0080"
down_revision: str | None = "identity_0070"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    set_outbox_payload_type(op, "identity", "json")


def downgrade() -> None:
    set_outbox_payload_type(op, "identity", "jsonb")
