"""Domain exceptions of the archive; each carries its status through the kit's base classes."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.errors import Conflict, NotFound, ValidationFailed


class CustomerNotFound(NotFound):
    """Also what a caller gets for a customer they may not see: never a hint that it exists."""

    def __init__(self, customer_id: uuid.UUID | str) -> None:
        super().__init__(f"no customer {customer_id}")


class ChangeRequestNotFound(NotFound):
    def __init__(self, request_id: uuid.UUID | str) -> None:
        super().__init__(f"no change request {request_id}")


class DuplicatesFound(Conflict):
    """409 with the likely duplicates; the caller may confirm and create anyway."""

    slug = "duplicates-found"
    title = "Likely duplicate customers"

    def __init__(self, candidates: list[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(
            detail
            or f"{len(candidates)} existing customer(s) look like this one; "
            "resend with confirm_duplicates=true to create it anyway",
            candidates=candidates,
        )


class AlreadyOwned(Conflict):
    slug = "already-owned"
    title = "The customer is no longer in the pool"


class ClaimLimitReached(Conflict):
    slug = "claim-limit-reached"
    title = "Claim limit reached"


class StaleChangeRequest(Conflict):
    slug = "change-request-decided"
    title = "The change request was already decided"


def invalid(path: str, msg: str) -> ValidationFailed:
    return ValidationFailed.field(path, msg)


class CodeTaken(Conflict):
    slug = "code-taken"
    title = "The new customer's code is taken"
