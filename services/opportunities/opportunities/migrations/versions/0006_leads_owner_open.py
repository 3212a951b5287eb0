"""The leads a rep holds, indexed apart (assignment's least open load reads them for every
placed lead; through the owner index it read the rep's whole history).

Revision ID: opportunities_0006
Revises: opportunities_0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "opportunities_0006"
down_revision: str | None = "opportunities_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_owner_open",
        "leads",
        ["owner_id"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status IN ('assigned', 'contacted')"),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_owner_open", table_name="leads", schema="opportunities")
