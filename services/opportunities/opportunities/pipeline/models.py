"""Opportunities, their stage history, and the learned usual times of the stalled list."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from opportunities.models import metadata

TS = sa.DateTime(timezone=True)
OPEN = sa.text("closed_at IS NULL")

OPPORTUNITIES = sa.Table(
    "opportunities",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("lead_id", sa.Uuid),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid),
    # Copied from the lead, so the events and source figures need no join back.
    sa.Column("source", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("amount", sa.Numeric(16, 2)),
    sa.Column("expected_close_on", sa.Date),
    sa.Column("stage", sa.Text, nullable=False),
    # Set by hand; null: the stage's default.
    sa.Column("probability", sa.Integer),
    sa.Column("next_action", sa.Text),
    sa.Column("next_action_on", sa.Date),
    sa.Column("risks", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("competitors", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("lost_reason", sa.Text),
    sa.Column("lost_to", sa.Text),
    sa.Column("stage_entered_at", TS, nullable=False),
    sa.Column("closed_at", TS),
    sa.Column("won_at", TS),
    # When an open opportunity turns stalled: its stage's usual time after it entered the
    # stage, the usual signing cycle after it was created (null once closed).
    sa.Column("stage_due_at", TS),
    sa.Column("cycle_due_at", TS),
    sa.Column("stalled_at", TS, sa.Computed("LEAST(stage_due_at, cycle_due_at)", persisted=True)),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.CheckConstraint("probability BETWEEN 0 AND 100", name="probability"),
    sa.Index("ix_opportunities_owner_created", "owner_id", "created_at", "id"),
    sa.Index("ix_opportunities_team_created", "team_id", "created_at", "id"),
    sa.Index("ix_opportunities_created", "created_at", "id"),
    sa.Index("ix_opportunities_customer", "customer_id"),
    sa.Index(
        "uq_opportunities_lead",
        "lead_id",
        unique=True,
        postgresql_where=sa.text("lead_id IS NOT NULL"),
    ),
    # The board: a team's open opportunities by stage.
    sa.Index("ix_opportunities_team_stage_open", "team_id", "stage", postgresql_where=OPEN),
    # The stalled list, soonest stalled first: everything, a team's, an owner's.
    sa.Index("ix_opportunities_stalled", "stalled_at", "id", postgresql_where=OPEN),
    sa.Index("ix_opportunities_team_stalled", "team_id", "stalled_at", "id", postgresql_where=OPEN),
    sa.Index(
        "ix_opportunities_owner_stalled", "owner_id", "stalled_at", "id", postgresql_where=OPEN
    ),
)

# Every stage move: from, to, when, by whom, how long it had been in the stage it left.
STAGE_CHANGES = sa.Table(
    "stage_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("opportunity_id", sa.Uuid, nullable=False),
    sa.Column("from_stage", sa.Text),
    sa.Column("to_stage", sa.Text, nullable=False),
    # When it happened, and when it was recorded (later, for a move recorded after the fact).
    sa.Column("at", TS, nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
    sa.Column("by", sa.Text),
    sa.Column("team_id", sa.Uuid),
    sa.Column("days_in_previous", sa.Numeric(10, 2)),
    sa.Column("note", sa.Text),
    sa.Index("ix_stage_changes_opportunity", "opportunity_id", "id"),
)

# Every change of an opportunity's owner after it was opened: from, to, by whom, why.
OPPORTUNITY_OWNERS = sa.Table(
    "opportunity_owners",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("opportunity_id", sa.Uuid, nullable=False),
    sa.Column("from_owner_id", sa.Uuid),
    sa.Column("to_owner_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid),
    sa.Column("by", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_opportunity_owners_opportunity", "opportunity_id", "id"),
)

# A team's learned usual time per open stage, and for the whole cycle (stage `CYCLE`).
STAGE_NORMS = sa.Table(
    "stage_norms",
    metadata,
    sa.Column("team_id", sa.Uuid, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("days", sa.Numeric(10, 1), nullable=False),
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
CYCLE = "_cycle"
