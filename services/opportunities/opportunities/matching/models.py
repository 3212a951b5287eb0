"""The customers leads are matched against: a read model of the customers feed."""

from __future__ import annotations

import sqlalchemy as sa

from opportunities.models import metadata

CUSTOMER_INDEX = sa.Table(
    "customer_index",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("code", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("region", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Uuid),
    sa.Column("team_id", sa.Uuid),
    sa.Column("normalized_name", sa.Text),
    sa.Column("normalized_phone", sa.Text),
    sa.Column("normalized_email", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The customers service's duplicate rules, one index each (active customers only match).
    sa.Index(
        "ix_customer_index_phone",
        "normalized_phone",
        postgresql_where=sa.text("status = 'active'"),
    ),
    sa.Index(
        "ix_customer_index_email",
        "normalized_email",
        postgresql_where=sa.text("status = 'active'"),
    ),
    sa.Index(
        "ix_customer_index_region_name",
        "region",
        "normalized_name",
        postgresql_where=sa.text("status = 'active'"),
    ),
)
