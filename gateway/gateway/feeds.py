"""`GET /api/v1/events/{app}`: every app's event feed, for admins and keys with the feed's
scope (`events:<app>`) or `events:read` (every feed).

The services' feeds are forwarded by the edge (edge.py) to the service's own `GET /events`;
the route here serves the gateway's own feed (identity) in-process, and documents them all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from gateway.edge import current_principal, feed_reader
from gateway.models import SCHEMA
from gateway.routes import EVENT_FEEDS, EVENTS_PREFIX, IDENTITY_FEED, EventFeed
from servicekit.db import Database
from servicekit.errors import NotFound
from servicekit.outbox import (
    FEED_MAX_LIMIT,
    EventPage,
    feed_statement,
    head_statement,
    parse_feed_cursor,
    render_feed,
)

events_router = APIRouter(tags=["events"])
_IDENTITY_FEED = feed_statement(SCHEMA)
_IDENTITY_HEAD = head_statement(SCHEMA)


@events_router.get(
    EVENTS_PREFIX + "/{app}",
    response_model=EventPage,
    operation_id="events_feed",
    summary="An app's events, in feed order (CloudEvents)",
    description="For admins, and keys with the feed's own scope (`events:identity`, "
    "`events:customers`, `events:visits`, `events:opportunities`, `events:analytics`) or "
    "`events:read`, which opens every feed.",
)
async def event_feed(
    request: Request,
    app: EventFeed,
    after: Annotated[str | None, Query(description="`next_cursor` of the last page")] = None,
    limit: Annotated[int, Query(ge=1, le=FEED_MAX_LIMIT)] = 200,
) -> Response:
    principal = current_principal(request)
    if app != IDENTITY_FEED:
        # The services' feeds never come here: the edge forwards them.
        raise NotFound(f"no event feed named {app!r}; feeds: {', '.join(EVENT_FEEDS)}")
    feed_reader(principal, IDENTITY_FEED)
    page = await identity_page(request.app.state.db, after, limit)
    return Response(page, media_type="application/json")


async def identity_page(db: Database, after: str | None, limit: int) -> bytes:
    """A page of the gateway's own feed, as the route serves it (webhook delivery reads it in
    process too)."""
    txid, position = parse_feed_cursor(after)
    page = _IDENTITY_FEED.args(txid=txid, position=position, limit=limit)
    rows = await db.reads().fetch(_IDENTITY_FEED.sql, *page)
    head = await db.reads().fetchrow(_IDENTITY_HEAD.sql, *_IDENTITY_HEAD.args())
    return render_feed(rows, after, limit, head)
