"""ETag / If-Match for optimistic concurrency on shared records.

A route that changes a shared record takes `IfMatch` (428 without the header) or
`OptionalIfMatch` (checked when sent) and calls `.check(record.version)` before changing it.
The header is a declared parameter, so the API document shows it, and the 412 (and 428) it
leads to (`servicekit.openapi`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header

from servicekit.errors import PreconditionFailed, PreconditionRequired


def etag_for(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class Precondition:
    """The request's If-Match, and whether the route requires one."""

    if_match: str | None
    required: bool

    def check(self, current_version: int) -> None:
        """428 when the header is missing (and required), 412 when it names another version."""
        if self.if_match is None:
            if self.required:
                raise PreconditionRequired(
                    "send If-Match with the ETag you last read, so that no one else's change is "
                    "lost"
                )
            return
        wanted = etag_for(current_version)
        tags = [t.strip().removeprefix("W/") for t in self.if_match.split(",")]
        if "*" in tags or wanted in tags:
            return
        raise PreconditionFailed(
            f"the record is at version {current_version}; read it again and retry",
            current_version=current_version,
        )


_DESCRIPTION = (
    "The ETag last read: the change is made only while the record is still at that version "
    "(412 otherwise)"
)
IfMatchHeader = Annotated[str | None, Header(alias="If-Match", description=_DESCRIPTION)]


async def _required_if_match(if_match: IfMatchHeader = None) -> Precondition:
    return Precondition(if_match, required=True)


async def _optional_if_match(if_match: IfMatchHeader = None) -> Precondition:
    return Precondition(if_match, required=False)


IfMatch = Annotated[Precondition, Depends(_required_if_match)]
OptionalIfMatch = Annotated[Precondition, Depends(_optional_if_match)]
IF_MATCH_DEPENDENCIES: tuple[Callable[..., Any], ...] = (_required_if_match, _optional_if_match)


def if_match_required(dependency: Callable[..., Any]) -> bool:
    return dependency is _required_if_match
