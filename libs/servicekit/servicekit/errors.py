"""RFC 9457 problem documents: domain exceptions carry their status, one handler renders them."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"
log = logging.getLogger("servicekit.errors")
# How long a client is asked to wait while the database cannot be reached: about what a
# restarted PostgreSQL takes to accept connections again.
DATABASE_RETRY_AFTER_SECONDS = 5


def problem_type(slug: str) -> str:
    # Relative URI references are allowed by RFC 9457 and keep the type stable across hosts.
    return f"/problems/{slug}"


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": problem_type(slug), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


class DomainError(Exception):
    """Base of every expected failure; subclasses fix status, slug and title."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers
        self.extra = extra

    def to_response(
        self, request: Request | None = None, *, instance: str | None = None
    ) -> Response:
        """The problem document; `instance` is the request's path (or the one given)."""
        if instance is None and request is not None:
            instance = str(request.url.path)
        return problem_response(
            self.status,
            self.slug,
            self.title,
            self.detail,
            headers=self.headers,
            instance=instance,
            **self.extra,
        )


class BadRequest(DomainError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "The resource has changed"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class ValidationFailed(DomainError):
    """422 for rules beyond the schema; `errors` names the offending field paths."""

    status, slug, title = 422, "validation-error", "The request is not valid"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=errors)

    @classmethod
    def field(cls, path: str, msg: str) -> ValidationFailed:
        return cls(f"{path}: {msg}", errors=[{"loc": path.split("."), "msg": msg}])


class PreconditionRequired(DomainError):
    status, slug, title = 428, "precondition-required", "If-Match header required"


class TooManyRequests(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """503 while the database cannot be reached; the same call may be retried."""

    def __init__(self) -> None:
        super().__init__(
            "The database cannot be reached at the moment. Try again later; a write is safely "
            "retried with the same Idempotency-Key.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )


class InternalError(DomainError):
    """The answer to an unexpected failure; the failure itself is logged where it happened."""

    status, slug, title = 500, "internal-error", "Internal error"

    def __init__(
        self, detail: str | None = "The request could not be completed; it has been logged."
    ) -> None:
        super().__init__(detail)


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "The request is not valid"),
    429: ("too-many-requests", "Too many requests"),
}


# SQLSTATE classes that mean "no database to talk to", not "this request is wrong": connection
# exceptions, the server shutting down or starting up, no connection slot left.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps: SQLAlchemy's `orig`, a cause, a context) says the
    database cannot be reached, whichever driver or pool it came through."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionError | sqlalchemy.exc.TimeoutError):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        if isinstance(current, asyncpg.InternalClientError):
            # A pooled connection the server is dropping (it got the server's farewell and not
            # yet the end of the stream): refused by the driver before anything was sent.
            return True
        orig = getattr(current, "orig", None)
        pending += [current.__cause__, current.__context__]
        if isinstance(orig, BaseException):
            pending.append(orig)
    return False


def problem_for_unexpected(exc: BaseException, path: str | None = None) -> DomainError:
    """The answer to an exception no handler expected: 503 with Retry-After when the database
    cannot be reached (a warning, no traceback), else a 500 (the traceback is logged)."""
    if database_unavailable(exc):
        log.warning("database unavailable (%s: %s)", type(exc).__name__, exc, extra={"path": path})
        return DatabaseUnavailable()
    log.error("unhandled error", exc_info=exc, extra={"path": path})
    return InternalError()


def validation_text(exc: ValidationError, limit: int = 5) -> str:
    """A model's validation errors as one line, `loc: message; ...` (a bulk row's outcome)."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "row"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg"),
                "type": err.get("type"),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return exc.to_response(request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(
            422,
            "validation-error",
            "The request is not valid",
            detail,
            errors=errors,
            instance=request.url.path,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            exc.status_code,
            slug,
            title,
            detail,
            headers=dict(exc.headers or {}),
            instance=request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return problem_for_unexpected(exc, request.url.path).to_response(request)

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # The database's and the network's failures are answered inside the app (a 503 while the
    # database is away), not passed on to the server's last-resort handler with a traceback.
    for kind in (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        sqlalchemy.exc.SQLAlchemyError,
    ):
        app.add_exception_handler(kind, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)
