"""Identity: teams, users, sessions, refresh tokens, API keys, audit, login throttling.

Revision ID: identity_0002
Revises: identity_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None

S = "identity"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Uuid, nullable=True),
        sa.Column("manager_id", sa.Uuid, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.ForeignKeyConstraint(["parent_id"], [f"{S}.teams.id"], name="fk_teams_parent_id_teams"),
        schema=S,
    )
    op.create_index("ix_teams_parent_id", "teams", ["parent_id"], schema=S)
    op.create_index("ix_teams_manager_id", "teams", ["manager_id"], schema=S)
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("team_id", sa.Uuid, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deactivated_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.ForeignKeyConstraint(["team_id"], [f"{S}.teams.id"], name="fk_users_team_id_teams"),
        sa.CheckConstraint("role IN ('admin', 'manager', 'rep')", name="ck_users_role"),
        schema=S,
    )
    op.create_index("ix_users_team_id", "users", ["team_id"], schema=S)
    op.create_index(
        "uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True, schema=S
    )
    op.create_foreign_key(
        "fk_teams_manager_id_users",
        "teams",
        "users",
        ["manager_id"],
        ["id"],
        source_schema=S,
        referent_schema=S,
        ondelete="SET NULL",
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.Column("revoked_reason", sa.Text, nullable=True),
        sa.Column("client_address", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.ForeignKeyConstraint(["user_id"], [f"{S}.users.id"], name="fk_sessions_user_id_users"),
        schema=S,
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"], schema=S)
    op.create_index("ix_sessions_revoked_at", "sessions", ["revoked_at"], schema=S)
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("session_id", sa.Uuid, nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("rotated_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            [f"{S}.sessions.id"],
            name="fk_refresh_tokens_session_id_sessions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        schema=S,
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"], schema=S)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False),
        sa.Column("created_by", sa.Uuid, nullable=True),
        _ts("created_at"),
        _ts("last_used_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.Uuid, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        schema=S,
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid, primary_key=True),
        _ts("at"),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor_type", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text, nullable=True),
        sa.Column("subject_type", sa.Text, nullable=True),
        sa.Column("subject_id", sa.Text, nullable=True),
        sa.Column("client_address", sa.Text, nullable=True),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        schema=S,
    )
    op.create_index("ix_audit_events_at_id", "audit_events", ["at", "id"], schema=S)
    op.create_index("ix_audit_events_action", "audit_events", ["action"], schema=S)
    op.create_index("ix_audit_events_subject_id", "audit_events", ["subject_id"], schema=S)
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        _ts("window_started_at"),
        _ts("last_failure_at"),
        _ts("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttle"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("login_throttle", schema=S)
    op.drop_table("audit_events", schema=S)
    op.drop_table("api_keys", schema=S)
    op.drop_table("refresh_tokens", schema=S)
    op.drop_table("sessions", schema=S)
    op.drop_constraint("fk_teams_manager_id_users", "teams", schema=S, type_="foreignkey")
    op.drop_table("users", schema=S)
    op.drop_table("teams", schema=S)
