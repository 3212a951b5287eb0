"""Table models of identity: users, teams, sessions (refresh-token families), API keys, audit,
login throttling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from gateway.models import Base
from servicekit.db import utcnow


def _ts(nullable: bool = False, **kw: Any) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable, **kw),
    )


class Team(Base, table=True):
    __tablename__ = "teams"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    parent_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("identity.teams.id"), nullable=True, index=True),
    )
    # users.team_id points here and this points at users: one side of the cycle is added later.
    manager_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid,
            sa.ForeignKey("identity.users.id", use_alter=True, ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
    )
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class User(Base, table=True):
    __tablename__ = "users"
    __table_args__ = (
        sa.Index("uq_users_email_lower", sa.text("lower(email)"), unique=True),
        sa.CheckConstraint("role IN ('admin', 'manager', 'rep')", name="role"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    role: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    team_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("identity.teams.id"), nullable=True, index=True),
    )
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    password_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    deactivated_at: datetime | None = _ts(nullable=True)


class AuthSession(Base, table=True):
    """One login: the family of its rotating refresh tokens; access tokens name it (`sid`)."""

    __tablename__ = "sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("identity.users.id"), nullable=False, index=True)
    )
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = _ts(nullable=True, index=True)
    revoked_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    client_address: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class RefreshToken(Base, table=True):
    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid,
            sa.ForeignKey("identity.sessions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    # sha256 of a 256-bit random secret: a slow hash would add nothing against guessing.
    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False, unique=True))
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    # Set when exchanged for the next token; presenting it again means it was stolen.
    rotated_at: datetime | None = _ts(nullable=True)


class ApiKey(Base, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    prefix: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    key_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False, unique=True))
    scopes: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    created_by: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))
    created_at: datetime = _ts()
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    revoked_by: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))


class AuditEvent(Base, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_at_id", "at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = _ts()
    action: str = Field(sa_column=sa.Column(sa.Text, nullable=False, index=True))
    actor_type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    actor_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    subject_type: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    subject_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.Text, nullable=True, index=True)
    )
    client_address: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    detail: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


class LoginThrottle(Base, table=True):
    """Failed-login counters per account and per client address, shared by all replicas."""

    __tablename__ = "login_throttle"

    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    failures: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    window_started_at: datetime = _ts()
    last_failure_at: datetime = _ts()
    locked_until: datetime | None = _ts(nullable=True)


TEAMS: sa.Table = Team.__table__  # type: ignore[attr-defined]
USERS: sa.Table = User.__table__  # type: ignore[attr-defined]
SESSIONS: sa.Table = AuthSession.__table__  # type: ignore[attr-defined]
REFRESH_TOKENS: sa.Table = RefreshToken.__table__  # type: ignore[attr-defined]
API_KEYS: sa.Table = ApiKey.__table__  # type: ignore[attr-defined]
AUDIT: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]
LOGIN_THROTTLE: sa.Table = LoginThrottle.__table__  # type: ignore[attr-defined]
