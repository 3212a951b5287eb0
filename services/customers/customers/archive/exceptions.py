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
        # A candidate the caller may not see is one entry with `visible: false` and no
        # identifying field, however many records it stands for.
        super().__init__(
            detail
            or "existing customers look like this one; "
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


class CustomerChangedSinceRequest(Conflict):
    """The customer is no longer at the version a change request was made against."""

    slug = "customer-changed-since-request"
    title = "The customer changed since the request"

    def __init__(self, base_version: int, version: int) -> None:
        super().__init__(
            f"the request was made against version {base_version} of the customer, which is "
            f"now at version {version}; approving it would overwrite the later change. "
            "Reject it (or its author withdraws it) and file it again if it still applies",
            base_version=base_version,
            current_version=version,
        )


def invalid(path: str, msg: str) -> ValidationFailed:
    return ValidationFailed.field(path, msg)


class CodeTaken(Conflict):
    slug = "code-taken"
    title = "The new customer's code is taken"
