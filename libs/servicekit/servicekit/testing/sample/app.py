"""`widgets`: every kit feature on one small resource (writes, reads, ETag, pages, events)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi import Path as PathParam
from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel
from starlette.responses import Response

from servicekit.app import AppSpec, CurrentPrincipal, create_app, json_response
from servicekit.consumer import following
from servicekit.db import make_registry, utcnow
from servicekit.directory import Directory
from servicekit.errors import NotFound, ValidationFailed
from servicekit.etag import IfMatch, etag_for
from servicekit.ids import new_id
from servicekit.outbox import Event, record_event
from servicekit.pagination import Page, PageDep, keyset, make_page
from servicekit.routing import SessionDep, kit_router
from servicekit.settings import KitSettings
from servicekit.tables import add_kit_tables

SCHEMA = "kitsample"
MIGRATIONS = Path(__file__).parent / "migrations"
registry = make_registry(SCHEMA)
metadata = registry.metadata
add_kit_tables(metadata)
directory = Directory(metadata)


class Base(SQLModel, registry=registry):
    """The sample's table models: its own registry, so its own MetaData."""


class Widget(Base, table=True):
    __tablename__ = "widgets"
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str
    owner: str
    version: int = 1
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_type=sa.DateTime(timezone=True),
    )


received = sa.Table(
    "received",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("subject", sa.Text),
)


class WidgetCreate(BaseModel):
    name: str = PydField(min_length=1, max_length=100)


class WidgetUpdate(BaseModel):
    name: str | None = PydField(default=None, min_length=1, max_length=100)


class WidgetRead(BaseModel):
    id: uuid.UUID
    name: str
    owner: str
    version: int
    created_at: datetime


WIDGETS: sa.Table = Widget.__table__  # type: ignore[attr-defined]

router = kit_router(prefix="/widgets", tags=["widgets"])


async def _load(session: AsyncSession, widget_id: uuid.UUID, owner: str) -> Widget:
    widget = await session.get(Widget, widget_id, with_for_update=True)
    if widget is None or widget.owner != owner:
        raise NotFound(f"no widget {widget_id}")
    return widget


@router.post("", status_code=201, response_model=WidgetRead)
async def create_widget(
    body: WidgetCreate, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    widget = Widget(name=body.name, owner=principal.sub)
    session.add(widget)
    await session.flush()
    await record_event(
        session, "widget.created", widget.id, {"name": widget.name, "owner": widget.owner}
    )
    if body.name == "boom":
        # Written and flushed, then refused: proves the request's changes roll back together.
        raise ValidationFailed.field("name", "boom is refused after the write")
    payload = WidgetRead.model_validate(widget, from_attributes=True).model_dump(mode="json")
    return json_response(
        payload, 201, {"ETag": etag_for(widget.version), "Location": f"/widgets/{widget.id}"}
    )


# Its shape is fixed: built once, the id bound per request (docs/anatomy.md).
_BY_ID = sa.select(WIDGETS).where(WIDGETS.c.id == sa.bindparam("widget_id"))


@router.get("/{widget_id}", response_model=WidgetRead)
async def get_widget(
    widget_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    row = (await session.execute(_BY_ID, {"widget_id": widget_id})).first()
    if row is None or row.owner != principal.sub:
        raise NotFound(f"no widget {widget_id}")
    return json_response(dict(row._mapping), headers={"ETag": etag_for(row.version)})


@router.patch("/{widget_id}", response_model=WidgetRead)
async def update_widget(
    widget_id: uuid.UUID,
    body: WidgetUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatch,
) -> Response:
    widget = await _load(session, widget_id, principal.sub)
    if_match.check(widget.version)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(widget, field, value)
    widget.version += 1
    await session.flush()
    await record_event(session, "widget.renamed", widget.id, {"name": widget.name})
    payload = WidgetRead.model_validate(widget, from_attributes=True).model_dump(mode="json")
    return json_response(payload, headers={"ETag": etag_for(widget.version)})


@router.get("", response_model=Page[WidgetRead])
async def list_widgets(
    page: PageDep, session: SessionDep, principal: CurrentPrincipal
) -> Page[WidgetRead]:
    t = WIDGETS
    stmt = keyset(sa.select(t).where(t.c.owner == principal.sub), [t.c.created_at, t.c.id], page)
    rows = (await session.execute(stmt)).all()
    items, cursor = make_page(rows, page, lambda r: (r.created_at, r.id))
    return Page(
        items=[WidgetRead.model_validate(r, from_attributes=True) for r in items],
        next_cursor=cursor,
    )


@router.post("/crash")
async def crash() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@router.post("/refused")
async def refused(session: SessionDep) -> None:
    # A value the database refuses that no check before it caught (SQLSTATE 22P02).
    await session.execute(sa.select(sa.cast(sa.literal("12x"), sa.Integer)))


async def record_received(session: AsyncSession, event: Event) -> None:
    await session.execute(
        received.insert().values(event_id=event.id, type=event.type, subject=event.subject)
    )


def settings_for(database_url: str, public_key_pem: str) -> KitSettings:
    return KitSettings(
        database_url=database_url,
        internal_token_public_key=public_key_pem,
        app_name="kitsample",
        outbox_metrics_interval_seconds=0.2,
    )


@contextlib.asynccontextmanager
async def follow_partner(app: FastAPI) -> AsyncIterator[None]:
    """A read model of another app's feed, kept as services keep theirs: a lifespan hook."""
    async with following(app, "partner", "kitsample.partner", record_received):
        yield


def sample_spec(*, follow_identity: bool = False, follow_partner_feed: bool = False) -> AppSpec:
    """The sample app; with `follow_identity`, it follows the identity feed into its
    directory (as services do by naming their directory in the spec); with
    `follow_partner_feed`, another app's feed into its `received` table (a hook)."""
    return AppSpec(
        name="kitsample",
        schema=SCHEMA,
        title="Kit sample",
        migrations_dir=MIGRATIONS,
        routers=[router],
        hooks=[follow_partner] if follow_partner_feed else [],
        directory=directory if follow_identity else None,
    )


def build(settings: KitSettings) -> FastAPI:
    return create_app(sample_spec(), settings)
