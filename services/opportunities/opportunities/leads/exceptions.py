"""Leads' domain errors."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.errors import Conflict, DomainError, NotFound


class LeadNotFound(NotFound):
    """Also what a caller gets for a lead they may not see."""

    def __init__(self, lead_id: uuid.UUID | str) -> None:
        super().__init__(f"no lead {lead_id}")


class WrongState(Conflict):
    slug = "lead-state"
    title = "The lead is not in a state that allows this"


class DuplicateCustomers(Conflict):
    """409 with the customers service's candidates: convert again confirming, or naming one."""

    slug = "duplicates-found"
    title = "Likely duplicate customers"

    def __init__(self, candidates: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{len(candidates)} existing customer(s) look like this lead's company; convert "
            "again with customer_id set to one of them, or with confirm_duplicates=true to "
            "create a new customer anyway",
            candidates=candidates,
        )


class UpstreamFailed(DomainError):
    """Another app answered in a way this one cannot turn into an answer of its own."""

    status, slug, title = 502, "bad-gateway", "Another service failed"
