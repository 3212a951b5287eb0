"""Leads and their assignment log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from opportunities.models import metadata

STATUSES = ("new", "qualified", "nurturing", "assigned", "contacted", "converted", "invalid")
TS = sa.DateTime(timezone=True)

# A lead its rep holds. Written out, not bound: a statement that reads the leads a rep holds
# must state it so for PostgreSQL to use `ix_leads_owner_open` (a bound status list would not
# prove the index's condition in a prepared statement's generic plan).
HELD_STATUSES = ("assigned", "contacted")
HELD = sa.text(f"status IN ({', '.join(repr(s) for s in HELD_STATUSES)})")

LEADS = sa.Table(
    "leads",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("external_id", sa.Text),
    sa.Column("company", sa.Text),
    sa.Column("contact_name", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("industry", sa.Text),
    sa.Column("need", sa.Text),
    # The evaluation inputs (criterion -> option) and the integration's own fields, as given.
    sa.Column("evaluation", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("attributes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # The active model's score (it decides), and the challenger's beside it.
    sa.Column("score", sa.Integer),
    sa.Column("qualified", sa.Boolean),
    sa.Column("model_id", sa.Uuid),
    sa.Column("challenger_model_id", sa.Uuid),
    sa.Column("challenger_score", sa.Integer),
    sa.Column("challenger_qualified", sa.Boolean),
    sa.Column("customer_id", sa.Uuid),
    sa.Column("owner_id", sa.Uuid),
    sa.Column("team_id", sa.Uuid),
    sa.Column("rule_id", sa.Uuid),
    sa.Column("next_touch_on", sa.Date),
    sa.Column("invalid_reason", sa.Text),
    sa.Column("invalid_note", sa.Text),
    sa.Column("opportunity_id", sa.Uuid),
    # The funnel's steps: each the first time the lead reached it (nurtured_at: the latest).
    sa.Column("qualified_at", TS),
    sa.Column("nurtured_at", TS),
    sa.Column("assigned_at", TS),
    sa.Column("contacted_at", TS),
    sa.Column("converted_at", TS),
    sa.Column("invalidated_at", TS),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.CheckConstraint(
        "status IN ('new', 'qualified', 'nurturing', 'assigned', 'contacted', 'converted', "
        "'invalid')",
        name="status",
    ),
    # The same lead pushed twice is one lead.
    sa.Index(
        "uq_leads_source_external_id",
        "source",
        "external_id",
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    ),
    # The list's shapes: a rep's own, a manager's teams, the shared queue, everything.
    sa.Index("ix_leads_owner_received", "owner_id", "received_at", "id"),
    sa.Index("ix_leads_team_received", "team_id", "received_at", "id"),
    sa.Index("ix_leads_received", "received_at", "id"),
    sa.Index(
        "ix_leads_queue",
        "received_at",
        "id",
        postgresql_where=sa.text("status = 'qualified' AND owner_id IS NULL"),
    ),
    # The leads a rep holds (least open load): as many as they hold, not their whole history.
    sa.Index("ix_leads_owner_open", "owner_id", postgresql_where=HELD),
    # A visit to the customer of an assigned lead is its first contact.
    sa.Index(
        "ix_leads_customer_assigned",
        "customer_id",
        postgresql_where=sa.text("status = 'assigned'"),
    ),
    sa.Index(
        "ix_leads_nurture_due",
        "next_touch_on",
        postgresql_where=sa.text("status = 'nurturing'"),
    ),
)

# Every assignment: by a rule, by a manager, or back to the queue.
LEAD_ASSIGNMENTS = sa.Table(
    "lead_assignments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("lead_id", sa.Uuid, nullable=False),
    sa.Column("from_owner_id", sa.Uuid),
    sa.Column("to_owner_id", sa.Uuid),
    sa.Column("team_id", sa.Uuid),
    sa.Column("rule_id", sa.Uuid),
    sa.Column("by", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_lead_assignments_lead", "lead_id", "id"),
)
