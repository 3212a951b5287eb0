"""Who may read and change scoring models: every user reads them (scores are explained with
them); admins change them; keys by scope (`scoring:read`, `scoring:write`). Calibration is
management's: managers, admins and keys with a scoring scope."""

from __future__ import annotations

from servicekit.auth import Principal
from servicekit.errors import Forbidden

READ_SCOPE = "scoring:read"
WRITE_SCOPE = "scoring:write"


def require_read(principal: Principal) -> None:
    if principal.kind == "key" and not (
        principal.has_scope(READ_SCOPE) or principal.has_scope(WRITE_SCOPE)
    ):
        raise Forbidden(f"this action needs the '{READ_SCOPE}' scope")


def require_calibration(principal: Principal) -> None:
    require_read(principal)
    if principal.kind == "user" and principal.is_rep:
        raise Forbidden("calibration is for managers and admins")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)
    elif not principal.is_admin:
        raise Forbidden("only admins change scoring models")
