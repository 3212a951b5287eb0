"""Per-request context that must reach logs and outgoing calls without being passed by hand."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
