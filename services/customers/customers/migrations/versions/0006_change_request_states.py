"""Change requests can be withdrawn by their author and are cancelled when the customer
changes owner or team while they wait.

Revision ID: customers_0006_requests
Revises: customers_0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "customers_0006_requests"
down_revision: str | None = "customers_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "customers"
TABLE = "change_requests"
CHECK = "ck_change_requests_status"


def upgrade() -> None:
    op.drop_constraint(op.f(CHECK), TABLE, schema=S, type_="check")
    op.create_check_constraint(
        op.f(CHECK),
        TABLE,
        "status IN ('pending', 'approved', 'rejected', 'withdrawn', 'cancelled')",
        schema=S,
    )


def downgrade() -> None:
    # Requests that ended in a state the old check does not know read as rejected.
    requests = sa.table(TABLE, sa.column("status"), schema=S)
    op.execute(
        sa.update(requests)
        .where(requests.c.status.in_(["withdrawn", "cancelled"]))
        .values(status="rejected")
    )
    op.drop_constraint(op.f(CHECK), TABLE, schema=S, type_="check")
    op.create_check_constraint(
        op.f(CHECK), TABLE, "status IN ('pending', 'approved', 'rejected')", schema=S
    )
