"""The outbox's event payloads as `json`, kept as written (`servicekit.tables`).

Revision ID: visits_0004
Revises: visits_0003
"""

from collections.abc import Sequence

from alembic import op

from servicekit.migrations import set_outbox_payload_type

revision: str = "visits_0004"
down_revision: str | None = "visits_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    set_outbox_payload_type(op, "visits", "json")


def downgrade() -> None:
    set_outbox_payload_type(op, "visits", "jsonb")
