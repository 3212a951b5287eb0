"""How delivery reads the feeds: each service's `GET /events` directly, with an internal token
the gateway signs for a reader holding only `events:read`; the gateway's own (identity) in
process. The fan-out consumers and the replays read pages through the same functions."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import orjson

from gateway.feeds import identity_page
from gateway.identity.scopes import EVENTS_READ
from gateway.routes import EVENT_FEEDS, IDENTITY_FEED, SERVICE_EVENTS_PATH
from gateway.signing import TokenSigner
from servicekit.auth import INTERNAL_TOKEN_HEADER, Principal
from servicekit.consumer import PageSource
from servicekit.db import Database

FEEDS: tuple[str, ...] = EVENT_FEEDS


def feed_of(db: Database, source: str) -> str:
    """The feed that serves events of `source` (the gateway's own events are identity's)."""
    return IDENTITY_FEED if source == db.outbox_source else source


# Who the services see reading their feeds for delivery (a fixed id: services may keep a key's
# id as a UUID).
READER = Principal(
    sub=str(uuid.uuid5(uuid.NAMESPACE_URL, "fieldforce:gateway:webhooks")),
    kind="key",
    role="integration",
    scopes=frozenset({EVENTS_READ}),
    name="webhook delivery",
)


class FeedPages:
    def __init__(
        self,
        db: Database,
        signer: TokenSigner,
        upstreams: dict[str, str],
        http: aiohttp.ClientSession,
    ) -> None:
        self.db = db
        self.signer = signer
        self.upstreams = upstreams
        self.http = http

    def url(self, feed: str) -> str:
        """Where the feed is read from (for logs)."""
        if feed == IDENTITY_FEED:
            return "the gateway's own feed (in process)"
        return self.upstreams[feed] + SERVICE_EVENTS_PATH

    def source(self, feed: str) -> PageSource:
        async def page(cursor: str | None, limit: int) -> dict[str, Any]:
            return await self.page(feed, cursor, limit)

        return page

    async def page(self, feed: str, cursor: str | None, limit: int) -> dict[str, Any]:
        if feed == IDENTITY_FEED:
            doc: dict[str, Any] = orjson.loads(await identity_page(self.db, cursor, limit))
            return doc
        params = {"limit": str(limit)}
        if cursor:
            params["after"] = cursor
        headers = {INTERNAL_TOKEN_HEADER: self.signer.token(READER, feed)}
        async with self.http.get(self.url(feed), params=params, headers=headers) as answer:
            if answer.status != 200:
                text = await answer.text()
                raise RuntimeError(f"the {feed} feed answered {answer.status}: {text[:200]}")
            # orjson, not aiohttp's default (the standard library's parser): a page of a
            # thousand events is about a megabyte.
            found: dict[str, Any] = orjson.loads(await answer.read())
            return found
