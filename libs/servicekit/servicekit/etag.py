"""ETag / If-Match for optimistic concurrency on shared records."""

from __future__ import annotations

from starlette.requests import Request

from servicekit.errors import PreconditionFailed, PreconditionRequired


def etag_for(version: int) -> str:
    return f'"{version}"'


def check_if_match(request: Request, current_version: int, *, required: bool = True) -> None:
    """428 when the header is missing (and required), 412 when it names another version."""
    header = request.headers.get("if-match")
    if header is None:
        if required:
            raise PreconditionRequired(
                "send If-Match with the ETag you last read, so that no one else's change is lost"
            )
        return
    wanted = etag_for(current_version)
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if "*" in tags or wanted in tags:
        return
    raise PreconditionFailed(
        f"the record is at version {current_version}; read it again and retry",
        current_version=current_version,
    )
