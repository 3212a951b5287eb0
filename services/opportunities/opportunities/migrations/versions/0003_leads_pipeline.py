"""Leads and their assignments, scoring models (version 1 active, the default criteria),
assignment rules, opportunities with their stage history and learned usual times, source
costs, and the index of customers leads are matched against.

Revision ID: opportunities_0003
Revises: opportunities_0002
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The evaluation model of the seed texts: need urgency, purchase timing, purchase cycle, an
# identified decision maker, a confirmed budget; 100 points in all, qualified from 60.
DEFAULT_CRITERIA = [
    {
        "key": "need_urgency",
        "label": "Need urgency",
        "options": [
            {"value": "high", "points": 25},
            {"value": "medium", "points": 15},
            {"value": "low", "points": 5},
        ],
    },
    {
        "key": "purchase_timing",
        "label": "Purchase timing",
        "options": [
            {"value": "within_1_month", "points": 20},
            {"value": "within_3_months", "points": 15},
            {"value": "within_6_months", "points": 8},
            {"value": "later", "points": 2},
        ],
    },
    {
        "key": "purchase_cycle",
        "label": "Purchase cycle",
        "options": [
            {"value": "short", "points": 15},
            {"value": "medium", "points": 10},
            {"value": "long", "points": 5},
        ],
    },
    {
        "key": "decision_maker_identified",
        "label": "Decision maker identified",
        "options": [{"value": "yes", "points": 20}, {"value": "no", "points": 0}],
    },
    {
        "key": "budget_confirmed",
        "label": "Budget confirmed",
        "options": [
            {"value": "yes", "points": 20},
            {"value": "partial", "points": 10},
            {"value": "no", "points": 0},
        ],
    },
]

revision: str = "opportunities_0003"
down_revision: str | None = "opportunities_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignment_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_owner_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "strategy IN ('round_robin', 'least_load')", name=op.f("ck_assignment_rules_strategy")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment_rules")),
        schema="opportunities",
    )
    op.create_index(
        "ix_assignment_rules_position",
        "assignment_rules",
        ["position", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_table(
        "customer_index",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("normalized_name", sa.Text(), nullable=True),
        sa.Column("normalized_phone", sa.Text(), nullable=True),
        sa.Column("normalized_email", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_index")),
        schema="opportunities",
    )
    op.create_index(
        "ix_customer_index_email",
        "customer_index",
        ["normalized_email"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_customer_index_phone",
        "customer_index",
        ["normalized_phone"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_customer_index_region_name",
        "customer_index",
        ["region", "normalized_name"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "lead_assignments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("from_owner_id", sa.Uuid(), nullable=True),
        sa.Column("to_owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("by", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_assignments")),
        schema="opportunities",
    )
    op.create_index(
        "ix_lead_assignments_lead",
        "lead_assignments",
        ["lead_id", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column("contact_name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("need", sa.Text(), nullable=True),
        sa.Column(
            "evaluation",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("qualified", sa.Boolean(), nullable=True),
        sa.Column("model_id", sa.Uuid(), nullable=True),
        sa.Column("challenger_model_id", sa.Uuid(), nullable=True),
        sa.Column("challenger_score", sa.Integer(), nullable=True),
        sa.Column("challenger_qualified", sa.Boolean(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("next_touch_on", sa.Date(), nullable=True),
        sa.Column("invalid_reason", sa.Text(), nullable=True),
        sa.Column("invalid_note", sa.Text(), nullable=True),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nurtured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalidated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('new', 'qualified', 'nurturing', 'assigned', 'contacted', 'converted', "
            "'invalid')",
            name=op.f("ck_leads_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        schema="opportunities",
    )
    op.create_index(
        "ix_leads_customer_assigned",
        "leads",
        ["customer_id"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status = 'assigned'"),
    )
    op.create_index(
        "ix_leads_nurture_due",
        "leads",
        ["next_touch_on"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status = 'nurturing'"),
    )
    op.create_index(
        "ix_leads_owner_received",
        "leads",
        ["owner_id", "received_at", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_index(
        "ix_leads_queue",
        "leads",
        ["received_at", "id"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("status = 'qualified' AND owner_id IS NULL"),
    )
    op.create_index(
        "ix_leads_received", "leads", ["received_at", "id"], unique=False, schema="opportunities"
    )
    op.create_index(
        "ix_leads_team_received",
        "leads",
        ["team_id", "received_at", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_index(
        "uq_leads_source_external_id",
        "leads",
        ["source", "external_id"],
        unique=True,
        schema="opportunities",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "opportunities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("expected_close_on", sa.Date(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=True),
        sa.Column("next_action", sa.Text(), nullable=True),
        sa.Column("next_action_on", sa.Date(), nullable=True),
        sa.Column(
            "risks",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "competitors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("lost_reason", sa.Text(), nullable=True),
        sa.Column("lost_to", sa.Text(), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cycle_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "stalled_at",
            sa.DateTime(timezone=True),
            sa.Computed("LEAST(stage_due_at, cycle_due_at)", persisted=True),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "probability BETWEEN 0 AND 100", name=op.f("ck_opportunities_probability")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunities")),
        schema="opportunities",
    )
    op.create_index(
        "ix_opportunities_created",
        "opportunities",
        ["created_at", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_index(
        "ix_opportunities_customer",
        "opportunities",
        ["customer_id"],
        unique=False,
        schema="opportunities",
    )
    op.create_index(
        "ix_opportunities_owner_created",
        "opportunities",
        ["owner_id", "created_at", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_index(
        "ix_opportunities_owner_stalled",
        "opportunities",
        ["owner_id", "stalled_at", "id"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_opportunities_stalled",
        "opportunities",
        ["stalled_at", "id"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_opportunities_team_created",
        "opportunities",
        ["team_id", "created_at", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_index(
        "ix_opportunities_team_stage_open",
        "opportunities",
        ["team_id", "stage"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_opportunities_team_stalled",
        "opportunities",
        ["team_id", "stalled_at", "id"],
        unique=False,
        schema="opportunities",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "uq_opportunities_lead",
        "opportunities",
        ["lead_id"],
        unique=True,
        schema="opportunities",
        postgresql_where=sa.text("lead_id IS NOT NULL"),
    )
    op.create_table(
        "scoring_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("criteria", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("max_points", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'challenger', 'retired')",
            name=op.f("ck_scoring_models_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_models")),
        sa.UniqueConstraint("version", name=op.f("uq_scoring_models_version")),
        schema="opportunities",
    )
    op.create_index(
        "uq_scoring_models_active",
        "scoring_models",
        ["status"],
        unique=True,
        schema="opportunities",
        postgresql_where=sa.text("status IN ('active', 'challenger')"),
    )
    now = datetime.now(UTC)
    models = sa.table(
        "scoring_models",
        *(sa.column(c) for c in ("id", "version", "name", "threshold", "max_points", "status")),
        *(sa.column(c) for c in ("activated_at", "created_at", "updated_at")),
        sa.column("criteria", postgresql.JSONB),
        schema="opportunities",
    )
    op.bulk_insert(
        models,
        [
            {
                "id": uuid.uuid4(),
                "version": 1,
                "name": "Default evaluation model",
                "criteria": DEFAULT_CRITERIA,
                "threshold": 60,
                "max_points": 100,
                "status": "active",
                "activated_at": now,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    op.create_table(
        "source_costs",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", "month", name=op.f("pk_source_costs")),
        schema="opportunities",
    )
    op.create_table(
        "stage_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("from_stage", sa.Text(), nullable=True),
        sa.Column("to_stage", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.Text(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("days_in_previous", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_changes")),
        schema="opportunities",
    )
    op.create_index(
        "ix_stage_changes_opportunity",
        "stage_changes",
        ["opportunity_id", "id"],
        unique=False,
        schema="opportunities",
    )
    op.create_table(
        "stage_norms",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("days", sa.Numeric(precision=10, scale=1), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "stage", name=op.f("pk_stage_norms")),
        schema="opportunities",
    )


def downgrade() -> None:
    # Each table's indexes go with it.
    for table in (
        "stage_norms",
        "stage_changes",
        "source_costs",
        "scoring_models",
        "opportunities",
        "leads",
        "lead_assignments",
        "customer_index",
        "assignment_rules",
    ):
        op.drop_table(table, schema="opportunities")
