"""The outbox's event payloads as `json`, kept as written (`servicekit.tables`).

Revision ID: customers_0008_outbox_json
Revises: customers_0007_archive_rest
"""

from collections.abc import Sequence

from alembic import op

from servicekit.migrations import set_outbox_payload_type

revision: str = "customers_0008_outbox_json"
down_revision: str | None = "customers_0007_archive_rest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    set_outbox_payload_type(op, "customers", "json")


def downgrade() -> None:
    set_outbox_payload_type(op, "customers", "jsonb")
