"""Market-condition reports (市场状况反映表) and complaints (客诉处理报告表): one table, one
lifecycle (open -> in_progress -> resolved -> closed, reopened when needed), every change kept."""

from __future__ import annotations

import sqlalchemy as sa

from visits.models import metadata, timestamps

KINDS = ("complaint", "market")
SEVERITIES = ("low", "medium", "high", "critical")
CASE_STATUSES = ("open", "in_progress", "resolved", "closed")

CASES = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    # The rep the case belongs to (who raised it, or the customer's owner for an integration's).
    sa.Column("rep_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("visit_id", sa.Uuid, nullable=True),
    sa.Column("customer_id", sa.Uuid, nullable=True),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("raised_by", sa.Text, nullable=False),
    # The company-time day it was raised: the daily report counts complaints per day.
    sa.Column("raised_on", sa.Date, nullable=False),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("resolved_by", sa.Text, nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("closed_by", sa.Text, nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False),
    *timestamps(),
    sa.CheckConstraint(f"kind IN {KINDS}", name="kind"),
    sa.CheckConstraint(f"severity IN {SEVERITIES}", name="severity"),
    sa.CheckConstraint(f"status IN {CASE_STATUSES}", name="status"),
    sa.CheckConstraint("kind <> 'complaint' OR customer_id IS NOT NULL", name="complaint_customer"),
    sa.Index("ix_cases_kind_created", "kind", "created_at", "id"),
    sa.Index("ix_cases_kind_rep_created", "kind", "rep_id", "created_at", "id"),
    sa.Index("ix_cases_rep_raised_on", "rep_id", "raised_on"),
    sa.Index("ix_cases_customer", "customer_id"),
)

CASE_CHANGES = sa.Table(
    "case_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("case_id", sa.Uuid, sa.ForeignKey(CASES.c.id, ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("from_status", sa.Text, nullable=True),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index("ix_case_changes_case", "case_id", "id"),
)
