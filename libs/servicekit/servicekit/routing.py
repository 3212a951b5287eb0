"""`KitRoute`: the one commit point per request, and `Idempotency-Key` for POST.

The session is opened lazily (hot reads that never ask for it pay nothing), committed when the
endpoint answered 2xx/3xx and rolled back otherwise, before the response leaves. An
idempotent POST claims its key with an INSERT in that same transaction: a concurrent duplicate
blocks on the key's unique index until the first commits, then replays the stored response, so
duplicates produce one effect and a crash can never keep the effect but lose the key.

`direct` marks a hot endpoint `async def f(request: Request) -> Response` that FastAPI's
per-request machinery (exit stacks, parameter solving, telemetry) is skipped for: the route
calls it with the request, under the same token check and commit rule as every KitRoute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from servicekit.auth import authenticate
from servicekit.db import Database, utcnow
from servicekit.errors import Conflict, ValidationFailed

IDEMPOTENCY_HEADER = "idempotency-key"
_REPLAYED_HEADERS = ("content-type", "location", "etag")
MAX_KEY_LENGTH = 255
_DIRECT = "__kit_direct__"

DirectEndpoint = TypeVar("DirectEndpoint", bound=Callable[[Request], Awaitable[Response]])


def direct(endpoint: DirectEndpoint) -> DirectEndpoint:
    """Mark `async def f(request: Request) -> Response` as a direct endpoint (see the module).

    It reads its own path and query parameters (document them with `openapi_extra`) and
    returns a `Response`; errors are raised as usual and rendered by the app's handlers.
    """
    setattr(endpoint, _DIRECT, True)
    return endpoint


def request_session(request: Request) -> AsyncSession:
    state = request.scope.setdefault("state", {})
    session = state.get("db_session")
    if session is None:
        db: Database = request.app.state.db
        session = db.new_session()
        state["db_session"] = session
    return session  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncSession:
    # async: FastAPI would run a plain `def` dependency in the thread pool.
    return request_session(request)


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def _finish(request: Request, commit: bool) -> None:
    session: AsyncSession | None = request.scope.get("state", {}).pop("db_session", None)
    if session is None:
        return
    try:
        if commit:
            await session.commit()
        else:
            await session.rollback()
    finally:
        await session.close()


def _fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.url.path.encode())
    digest.update(b"?" + request.url.query.encode())
    digest.update(b"\0" + body)
    return digest.hexdigest()


def _replay(row: Any) -> Response:
    headers = dict(row.headers or {})
    headers["idempotent-replayed"] = "true"
    return Response(content=row.body or b"", status_code=row.status, headers=headers)


async def _claim_key(request: Request, key: str) -> Response | None:
    """Claim the key in the request's transaction; a stored answer means replay it."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed.field("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} characters")
    principal = authenticate(request)
    fingerprint = _fingerprint(request, await request.body())
    db: Database = request.app.state.db
    table = f'"{db.schema}".idempotency_keys'
    session = request_session(request)
    ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    now = utcnow()
    params = {"p": principal.sub, "k": key, "f": fingerprint, "now": now, "cutoff": now - ttl}
    await session.execute(
        sa.text(f"DELETE FROM {table} WHERE principal = :p AND key = :k AND created_at < :cutoff"),
        params,
    )
    claimed = await session.execute(
        sa.text(
            f"INSERT INTO {table} (principal, key, fingerprint, created_at) "
            "VALUES (:p, :k, :f, :now) "
            "ON CONFLICT DO NOTHING RETURNING key"
        ),
        params,
    )
    if claimed.first() is not None:
        return None
    row = (
        await session.execute(
            sa.text(
                f"SELECT fingerprint, status, headers, body FROM {table} "
                "WHERE principal = :p AND key = :k"
            ),
            params,
        )
    ).first()
    await _finish(request, commit=False)
    if row is None or row.status is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry later")
    if row.fingerprint != fingerprint:
        raise ValidationFailed.field(
            "Idempotency-Key", "was already used for a different request; use a new key"
        )
    return _replay(row)


async def _store_answer(request: Request, key: str, response: Response) -> None:
    body = getattr(response, "body", None)
    if body is None:
        return
    db: Database = request.app.state.db
    headers = {k: v for k, v in response.headers.items() if k in _REPLAYED_HEADERS}
    await request_session(request).execute(
        sa.text(
            f'UPDATE "{db.schema}".idempotency_keys SET status = :s, '
            "headers = CAST(:h AS jsonb), body = :b WHERE principal = :p AND key = :k"
        ),
        {
            "s": response.status_code,
            "h": orjson.dumps(headers).decode(),
            "b": bytes(body),
            "p": authenticate(request).sub,
            "k": key,
        },
    )


QueryModel = TypeVar("QueryModel", bound=BaseModel)


def query_params(request: Request, model: type[QueryModel]) -> QueryModel:
    """A direct endpoint's query parameters, validated by one flat model in one call; errors
    are the same 422 FastAPI's own parameter validation gives (locations under "query")."""
    try:
        return model.model_validate(request.query_params)
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def openapi_query(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI `parameters` of a flat query model, for a direct endpoint's
    `openapi_extra={"parameters": [...]}`."""
    schema = model.model_json_schema()
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: a query model has flat fields only")
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
        }
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def _takes_only_the_request(route: APIRoute) -> bool:
    d = route.dependant
    params = (d.path_params, d.query_params, d.header_params, d.cookie_params, d.body_params)
    others = (
        d.websocket_param_name,
        d.http_connection_param_name,
        d.response_param_name,
        d.background_tasks_param_name,
        d.security_scopes_param_name,
    )
    return (
        d.request_param_name is not None
        and not any(params)
        and not d.dependencies
        and all(o is None for o in others)
    )


class KitRoute(APIRoute):
    # Set by the app factory on the routes of a service's routers: the internal token is then
    # checked here, directly, instead of as one more dependency for FastAPI to solve.
    requires_principal: bool = False

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if getattr(endpoint, _DIRECT, False):
            if not _takes_only_the_request(self):
                raise TypeError(
                    f"direct endpoint {endpoint.__name__} must take only `request: Request` "
                    "(no parameters, dependencies or body for FastAPI to solve)"
                )
            handler = self._kit_handler(endpoint)

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)

            # Exceptions reach the app's ExceptionMiddleware, which renders them with the same
            # handlers FastAPI's per-route wrapper would have used.
            self.app = app

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self._kit_handler(super().get_route_handler())

    def _kit_handler(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def route_handler(request: Request) -> Response:
            key = request.headers.get(IDEMPOTENCY_HEADER) if request.method == "POST" else None
            try:
                if self.requires_principal:
                    authenticate(request)
                if key is not None:
                    replay = await _claim_key(request, key)
                    if replay is not None:
                        return replay
                response = await handler(request)
                ok = response.status_code < 400
                if ok and key is not None:
                    await _store_answer(request, key, response)
            except BaseException:
                await _finish(request, commit=False)
                raise
            await _finish(request, commit=ok)
            return response

        return route_handler


def kit_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes commit once per request and honour Idempotency-Key."""
    return APIRouter(route_class=KitRoute, **kwargs)
