"""Daily sales reports (每日销售报告表)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from visits.models import metadata, timestamps

REPORT_STATUSES = ("submitted", "signed_off", "returned")
ATTENDANCE = ("present", "leave", "sick", "travel")

DAILY_REPORTS = sa.Table(
    "daily_reports",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("rep_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("report_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attendance", sa.Text, nullable=False),
    sa.Column("competitor_info", sa.Text, nullable=True),
    sa.Column("customer_feedback", sa.Text, nullable=True),
    sa.Column("lessons", sa.Text, nullable=True),
    sa.Column("tomorrow_focus", sa.Text, nullable=True),
    sa.Column("mood", sa.SmallInteger, nullable=True),
    # The derived figures as they were when the report was (last) submitted.
    sa.Column("figures", JSONB, nullable=True),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    *timestamps(),
    sa.UniqueConstraint("rep_id", "report_date"),
    sa.CheckConstraint(f"status IN {REPORT_STATUSES}", name="status"),
    sa.CheckConstraint(f"attendance IN {ATTENDANCE}", name="attendance"),
    sa.CheckConstraint("mood BETWEEN 1 AND 5", name="mood"),
    sa.Index("ix_daily_reports_date_status", "report_date", "status", "id"),
)
