"""Indexes the dashboard of a rep and of a team reads from alone, so that its time does not grow
with the rest of the data: each rep's and team's re-engaging visits by day
(`ix_visits_reengaged_rep_day`, `ix_visits_reengaged_team_day`), and the daily rollups'
point-in-time changes of a rep and of a team in day order (`ix_daily_reps_at_end`,
`ix_daily_teams_at_end`).

Revision ID: analytics_0008
Revises: analytics_0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0008"
down_revision: str | None = "analytics_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REENGAGED = sa.text("customer_status IN ('dormant', 'lost')")
POINT_IN_TIME = ["undeveloped", "a_level", "active"]


def upgrade() -> None:
    for name, key in (("rep", "rep_id"), ("team", "team_id")):
        op.create_index(
            f"ix_visits_reengaged_{name}_day",
            "visits",
            [key, "day"],
            schema="analytics",
            postgresql_include=["customer_id"],
            postgresql_where=REENGAGED,
        )
    for table, key in (("daily_reps", "rep_id"), ("daily_teams", "team_id")):
        op.create_index(
            f"ix_{table}_at_end",
            table,
            [key, "day"],
            schema="analytics",
            postgresql_include=POINT_IN_TIME,
        )


def downgrade() -> None:
    for table in ("daily_teams", "daily_reps"):
        op.drop_index(f"ix_{table}_at_end", table_name=table, schema="analytics")
    for name in ("team", "rep"):
        op.drop_index(f"ix_visits_reengaged_{name}_day", table_name="visits", schema="analytics")
