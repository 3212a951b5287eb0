"""`KitRoute`: the one commit point per request, and `Idempotency-Key` for POST.

The session is opened lazily (endpoints that never ask for it pay nothing), committed when the
endpoint answered 2xx/3xx and rolled back otherwise, before the response leaves. GET and HEAD
are reads and never write: their session runs without a transaction, so a read costs one
round trip per statement instead of BEGIN, the statement and COMMIT; a write made of one
statement may run it the same way (`lone_statement`). An
idempotent POST claims its key with an INSERT in that same transaction: a concurrent duplicate
blocks on the key's unique index until the first commits, then replays the stored response, so
duplicates produce one effect and a crash can never keep the effect but lose the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, params
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from servicekit.auth import authenticate
from servicekit.db import AUTOCOMMIT_INFO, Database, utcnow
from servicekit.errors import Conflict, ValidationFailed
from servicekit.inputs import check_request
from servicekit.tables import kit_tables

IDEMPOTENCY_HEADER = "idempotency-key"
_REPLAYED_HEADERS = ("content-type", "location", "etag")
MAX_KEY_LENGTH = 255


_READS = frozenset({"GET", "HEAD"})


def request_session(request: Request) -> AsyncSession:
    state = request.scope.setdefault("state", {})
    session = state.get("db_session")
    if session is None:
        db: Database = request.app.state.db
        session = db.new_session(autocommit=request.method in _READS)
        state["db_session"] = session
    return session  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncSession:
    # async: FastAPI would run a plain `def` dependency in the thread pool.
    return request_session(request)


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def lone_statement(session: AsyncSession) -> bool:
    """Declare that the request's next statement is its whole change: nothing was written
    before it and nothing is after it. When nothing has run in the session yet (no
    Idempotency-Key claimed, nothing read), the statement then runs without BEGIN and COMMIT:
    PostgreSQL runs a lone statement as its own transaction, all of it or none of it, so it
    commits or fails alone, two round trips fewer. Otherwise it joins the request's
    transaction as any statement does. True when it runs alone.

    The statement is the last thing that can fail: it is committed when it returns, whatever
    the answer is then (a refusal after it would keep the change)."""
    if session.in_transaction():
        return False
    # SQLAlchemy's way to set one session's isolation before its transaction begins; the
    # pool takes the level back when the connection returns.
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    session.info[AUTOCOMMIT_INFO] = True
    return True


async def _finish(request: Request, commit: bool) -> None:
    session: AsyncSession | None = request.scope.get("state", {}).pop("db_session", None)
    if session is None:
        return
    try:
        # A read's session has no transaction to end (each statement committed on its own):
        # closing it returns its connection, and a commit would only walk the ORM's
        # transaction machinery once more.
        if session.info.get(AUTOCOMMIT_INFO):
            return
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
    t = kit_tables(db.schema).idempotency_keys
    session = request_session(request)
    ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    now = utcnow()
    this_key = (t.c.principal == principal.sub, t.c.key == key)
    await session.execute(sa.delete(t).where(*this_key, t.c.created_at < now - ttl))
    claimed = await session.execute(
        pg_insert(t)
        .values(principal=principal.sub, key=key, fingerprint=fingerprint, created_at=now)
        .on_conflict_do_nothing()
        .returning(t.c.key)
    )
    if claimed.first() is not None:
        return None
    row = (
        await session.execute(
            sa.select(t.c.fingerprint, t.c.status, t.c.headers, t.c.body).where(*this_key)
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
    t = kit_tables(db.schema).idempotency_keys
    headers = {k: v for k, v in response.headers.items() if k in _REPLAYED_HEADERS}
    await request_session(request).execute(
        sa.update(t)
        .where(t.c.principal == authenticate(request).sub, t.c.key == key)
        .values(status=response.status_code, headers=headers, body=bytes(body))
    )


class _ModelBodyRequest(Request):
    """The request of an endpoint whose body is one JSON model, as FastAPI's documented custom
    `Request` class of a route ("Custom Request and APIRoute class"). Once the kit's checks of
    the request are done (`checked`), FastAPI asks `json()` for the document it validates and
    receives the model, validated straight from the body's bytes by pydantic
    (`model_validate_json`): one pass instead of a parse into Python objects and a walk of
    them; FastAPI takes an instance of its model as it is. A body the model refuses, or one
    the kit's checks parsed already, is answered as the document, which FastAPI validates and
    reports exactly as it does on every other route."""

    model: type[BaseModel]
    checked = False
    _document_read = False

    async def json(self) -> Any:
        if not self.checked or self._document_read:
            self._document_read = True
            return await super().json()
        if not hasattr(self, "_model_body"):
            try:
                self._model_body: Any = self.model.model_validate_json(await self.body())
            except ValidationError:
                self._model_body = await super().json()
        return self._model_body


def _json_model(route: APIRoute) -> type[BaseModel] | None:
    """The model a route's whole JSON body is validated into (one body parameter, neither
    embedded nor a form), or None."""
    field = route.body_field
    if field is None or len(route.dependant.body_params) != 1:
        return None
    info = field.field_info
    model = info.annotation
    if isinstance(info, params.Form) or getattr(info, "embed", False):
        return None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None


class KitRoute(APIRoute):
    # Set by the app factory on the routes of a service's routers: the internal token is then
    # checked here, directly, instead of as one more dependency for FastAPI to solve.
    requires_principal: bool = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # A body FastAPI parses for the endpoint is checked with the path and the query; an
        # endpoint that reads its body itself checks what it parsed (`servicekit.inputs`).
        parsed_body = self.body_field is not None
        model = _json_model(self)

        async def route_handler(request: Request) -> Response:
            if model is not None:
                wrapped = _ModelBodyRequest(request.scope, request.receive)
                wrapped.model = model
                request = wrapped
            key = request.headers.get(IDEMPOTENCY_HEADER) if request.method == "POST" else None
            try:
                if self.requires_principal:
                    authenticate(request)
                await check_request(request, body=parsed_body)
                if isinstance(request, _ModelBodyRequest):
                    request.checked = True
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


def operation_id(route: APIRoute) -> str:
    """A route's operation id when it names none: its tag and its function's name
    (`visit_plans_submit_plan`), short and stable, never FastAPI's path-and-method one."""
    area = str(route.tags[0]) if route.tags else "api"
    return f"{area.replace(' ', '_').replace('-', '_')}_{route.name}"


def kit_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes commit once per request and honour Idempotency-Key."""
    kwargs.setdefault("generate_unique_id_function", operation_id)
    return APIRouter(route_class=KitRoute, **kwargs)
