"""The service test harness: one app on a fresh migrated database, called as a principal.

    from servicekit.testing.harness import serve_service
    from visits.config import Settings
    from visits.main import spec

    @pytest.fixture
    async def visits(fresh_db, minter, org):
        async with serve_service(spec(), Settings, fresh_db, minter, org=org) as svc:
            yield svc

    async def test_a_rep_sees_their_plan(visits, org):
        resp = await visits.get("/api/v1/visits/plans", as_=org.rep_a)
        assert resp.status_code == 200
        events = await visits.events({"plan.submitted"})   # typed `Event`s of its /events

What `serve_service` gives (`ServiceClient`):

- the app served by uvicorn on a free port (`transport="http"`, as in production) or called in
  process (`transport="asgi"`), lifespan included; `client` is an `httpx.AsyncClient` on it;
- `get/post/put/patch/delete(path, as_=principal, ...)` and `headers(principal)`: the internal
  token minted by the test key pair (`TokenMinter`), as the gateway mints it;
- `events(types)`: the app's own `/events` feed, read to the end, as typed events;
- stand-ins of the feeds the app follows through the gateway (`StandInFeeds`, over real
  HTTP, at the app's `GATEWAY_URL`), which its real consumers read: for an app with a
  `directory`, `load_org(org)` announces a whole organisation on the identity feed (`org=`
  does it at start), `identity_event(...)` one change (`move_user`, `deactivate_user` for
  the common ones), `feed_event(source, ...)` one event of another app's feed; each waits
  until the app's consumer has applied it (no sleeping);
- `clock=`: a `servicekit.testing.clock.FakeClock` the app reads instead of the system's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicekit.app import AppSpec, create_app
from servicekit.auth import Principal
from servicekit.clock import SYSTEM_CLOCK, Clock
from servicekit.directory import (
    IDENTITY_SOURCE,
    USER_DEACTIVATED,
    USER_TEAM_CHANGED,
    Directory,
)
from servicekit.errors import problem_response
from servicekit.outbox import Event, feed_cursor, parse_feed_cursor
from servicekit.settings import KitSettings
from servicekit.testing.org import Org
from servicekit.testing.servers import serve
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, TokenMinter

FEEDS_PATH = "/api/v1/events"


async def wait_until(
    condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
    *,
    within: float = 10.0,
    every: float = 0.01,
    what: str = "the condition",
) -> Any:
    """Poll `condition` (sync or async) until it returns something truthy, and return that;
    fail after `within` seconds. For what happens in the background (a log line written, a
    process started), never instead of asking the code under test for an answer."""

    async def check() -> Any:
        result = condition()
        return await result if inspect.isawaitable(result) else result

    try:
        async with asyncio.timeout(within):
            while not (result := await check()):  # noqa: ASYNC110 (the condition is outside)
                await asyncio.sleep(every)
            return result
    except TimeoutError:
        raise AssertionError(f"{what} did not hold within {within} s") from None


class StandInFeeds:
    """Stand-ins for the event feeds an app follows through the gateway
    (`/api/v1/events/<source>`: identity's, and other apps' such as customers'), served over
    real HTTP: items, cursors, paging and the `X-API-Key` check as the kit's feed serves them.
    A source nothing was published on is an empty feed."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key or "ffk_test_" + secrets.token_urlsafe(16)
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.asgi = Starlette(routes=[Route(FEEDS_PATH + "/{source}", self._feed)])

    def publish(
        self,
        type_: str,
        subject: str | None,
        data: dict[str, Any],
        *,
        source: str = IDENTITY_SOURCE,
    ) -> Event:
        items = self.items.setdefault(source, [])
        item = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "type": type_,
            "source": source,
            "subject": subject,
            "time": SYSTEM_CLOCK.now().isoformat(),
            "datacontenttype": "application/json",
            "dataversion": "1",
            # As the feed would carry them: UUIDs, dates and decimals as strings.
            "data": orjson.loads(orjson.dumps(data, default=str)),
            "cursor": feed_cursor(1, len(items) + 1),
        }
        items.append(item)
        return Event.from_json(item)

    def last_cursor(self, source: str = IDENTITY_SOURCE) -> str | None:
        items = self.items.get(source)
        return items[-1]["cursor"] if items else None

    async def _feed(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != self.api_key:
            return problem_response(401, "unauthorized", "Unauthorized", "unknown API key")
        items = self.items.get(request.path_params["source"], [])
        _, after = parse_feed_cursor(request.query_params.get("after"))
        limit = int(request.query_params.get("limit", "100"))
        page = items[max(after, 0) : max(after, 0) + limit]
        body = {
            "items": page,
            "next_cursor": page[-1]["cursor"] if page else request.query_params.get("after"),
            "has_more": len(page) == limit,
            "head": items[-1]["cursor"] if items else None,
        }
        return Response(orjson.dumps(body), media_type="application/json")


def event_reader(app_name: str) -> Principal:
    """An integration key allowed to read the app's feed."""
    return Principal(
        sub=str(uuid.uuid4()),
        kind="key",
        role="integration",
        scopes=frozenset({"events:read", f"events:{app_name}"}),
        name="test event reader",
    )


@dataclass
class ServiceClient:
    app: FastAPI
    client: httpx.AsyncClient
    minter: TokenMinter
    database_url: str
    clock: Clock = SYSTEM_CLOCK
    feeds: StandInFeeds | None = None
    org: Org | None = None
    reader: Principal = field(init=False)

    def __post_init__(self) -> None:
        self.reader = event_reader(self.name)

    @property
    def name(self) -> str:
        """The app's name: its schema, its token audience, its event source."""
        spec: AppSpec = self.app.state.spec
        return spec.name

    @property
    def url(self) -> str:
        return str(self.client.base_url)

    def headers(self, principal: Principal, **extra: str) -> dict[str, str]:
        """The principal's internal token (minted at the app's clock time), and `extra`."""
        token = self.minter.token(principal, self.name, now=self.clock.timestamp())
        return {INTERNAL_TOKEN_HEADER: token, **extra}

    async def request(
        self,
        method: str,
        path: str,
        *,
        as_: Principal | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`path` as `as_` (no token at all without one); kwargs go to httpx."""
        sent = {**(self.headers(as_) if as_ is not None else {}), **(headers or {})}
        return await self.client.request(method, path, headers=sent, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def events(self, types: Iterable[str] | None = None) -> list[Event]:
        """Every event of the app's `/events` feed so far (only `types`, when given)."""
        wanted = None if types is None else set(types)
        out: list[Event] = []
        after: str | None = None
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            resp = await self.get("/events", params=params, as_=self.reader)
            if resp.status_code != 200:
                raise AssertionError(f"/events answered {resp.status_code}: {resp.text}")
            doc = resp.json()
            out.extend(Event.from_json(item) for item in doc["items"])
            after = doc["next_cursor"]
            if not doc["has_more"]:
                break
        return [e for e in out if wanted is None or e.type in wanted]

    # -- the organisation directory -----------------------------------------------------------
    @property
    def directory(self) -> Directory:
        directory: Directory | None = self.app.state.directory
        if directory is None:
            raise AssertionError(f"{self.name} has no directory (AppSpec.directory)")
        return directory

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session on the app's database (committed at the end), e.g. for directory queries."""
        async with self.app.state.db.session() as session:
            yield session

    def _feeds(self) -> StandInFeeds:
        if self.feeds is None:
            raise AssertionError(f"{self.name} follows no stand-in feeds here")
        return self.feeds

    async def sync_feed(self, source: str) -> int:
        """Let the app's consumer of `source` apply everything published on it so far; how
        many events it applied. The consumer's own reading: the feed over HTTP, its cursor,
        its handler."""
        feeds = self._feeds()
        consumer = self.app.state.feeds.get(source)
        if consumer is None or not hasattr(consumer, "catch_up"):
            raise AssertionError(f"{self.name} does not follow the {source} feed")
        applied = int(await consumer.catch_up())
        cursor = await consumer.load_cursor()
        if cursor != feeds.last_cursor(source):
            raise AssertionError(
                f"the consumer stopped at {cursor}, not {feeds.last_cursor(source)}"
            )
        return applied

    async def sync_feeds(self) -> None:
        """Let every consumer of the app read its feed once (so /readyz reads them as
        followed, not as starting)."""
        for source, follower in self.app.state.feeds.items():
            if hasattr(follower, "catch_up") and self.feeds is not None:
                await self.sync_feed(source)

    async def sync_directory(self) -> int:
        """`sync_feed` of the identity feed."""
        return await self.sync_feed(IDENTITY_SOURCE)

    async def feed_event(self, source: str, type_: str, /, **data: Any) -> Event:
        """Announce one event of `source` (data as that app's payload, which may have fields
        named `source` or `type_`: a customer's source) and wait until the app has applied
        it."""
        subject = None if "id" not in data else str(data["id"])
        event = self._feeds().publish(type_, subject, data, source=source)
        await self.sync_feed(source)
        return event

    async def identity_event(self, type_: str, /, **data: Any) -> Event:
        """Announce one identity change (data as the gateway's payload) and wait until the
        app has applied it."""
        return await self.feed_event(IDENTITY_SOURCE, type_, **data)

    async def move_user(self, person: Principal, team_id: str) -> Event:
        """Identity moves `person` to another team (`user.team_changed`, as the gateway
        announces it); waits until the app has applied it."""
        return await self.identity_event(
            USER_TEAM_CHANGED,
            id=person.sub,
            role=person.role,
            team_id=team_id,
            active=True,
            previous_team_id=person.team_id,
        )

    async def deactivate_user(self, person: Principal) -> Event:
        """Identity deactivates `person` (`user.deactivated`); waits until it is applied."""
        return await self.identity_event(
            USER_DEACTIVATED, id=person.sub, role=person.role, team_id=person.team_id, active=False
        )

    async def load_org(self, org: Org) -> Org:
        """Announce a whole organisation on the identity feed, as the gateway would have, and
        wait until the app's directory holds it."""
        feeds = self._feeds()
        for type_, subject, data in org.identity_events():
            feeds.publish(type_, subject, data)
        await self.sync_directory()
        self.org = org
        return org


@contextlib.asynccontextmanager
async def serve_service(
    spec: AppSpec,
    settings: type[KitSettings],
    database_url: str,
    minter: TokenMinter,
    *,
    org: Org | None = None,
    clock: Clock | None = None,
    transport: Literal["http", "asgi"] = "http",
    follow_feeds: bool = True,
    feeds: StandInFeeds | None = None,
    client_class: type[ServiceClient] = ServiceClient,
    **overrides: Any,
) -> AsyncIterator[ServiceClient]:
    """Run the app described by `spec` on `database_url` (a fresh migrated database, e.g. the
    root conftest's `fresh_db`) and hand out a `ServiceClient` for it. `settings` is the
    app's settings class; `overrides` set its fields. The app follows its feeds on
    `StandInFeeds` (unless `follow_feeds` is off: then its /readyz says degraded), identity's
    loaded with `org` when given; `feeds` hands in the stand-ins of a previous run, with what
    was published on them while the app was down (`app.feeds.publish(...)`), to serve the app
    again on the same database and see it catch up. `client_class`: a subclass of
    `ServiceClient` with the app's own helpers (customers' `create`)."""
    async with contextlib.AsyncExitStack() as stack:
        feeds = (feeds or StandInFeeds()) if follow_feeds else None
        values: dict[str, Any] = {
            "database_url": database_url,
            "internal_token_public_key": minter.public_pem,
            "gateway_url": "",
            "events_api_key": "",
            "outbox_metrics_interval_seconds": 0.5,
        }
        if feeds is not None:
            values["gateway_url"] = await stack.enter_async_context(serve(feeds.asgi))
            values["events_api_key"] = feeds.api_key
        app = create_app(spec, settings(**{**values, **overrides}), clock=clock)
        if transport == "http":
            url = await stack.enter_async_context(serve(app))
        else:
            await stack.enter_async_context(app.router.lifespan_context(app))
            url = "http://testserver"
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=url,
                timeout=30,
                transport=httpx.ASGITransport(app=app) if transport == "asgi" else None,
            )
        )
        service = client_class(
            app, client, minter, database_url, clock=clock or SYSTEM_CLOCK, feeds=feeds
        )
        if org is not None:
            await service.load_org(org)
        await service.sync_feeds()
        yield service


def service_fixture(
    name: str, spec: Callable[[], AppSpec], settings: type[KitSettings], **options: Any
) -> Any:
    """A pytest fixture named `name` serving the app on the root conftest's `fresh_db` with the
    standard `org` loaded: an app's whole `tests/conftest.py` can be

        visits = service_fixture("visits", spec, Settings)
    """
    import pytest

    @pytest.fixture(name=name)
    async def serve_it(
        fresh_db: str, minter: TokenMinter, org: Org
    ) -> AsyncIterator[ServiceClient]:
        async with serve_service(spec(), settings, fresh_db, minter, org=org, **options) as svc:
            yield svc

    return serve_it
