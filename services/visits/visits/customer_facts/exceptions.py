"""Errors of the customers read model."""

from __future__ import annotations

import uuid

from servicekit.errors import ValidationFailed


class UnknownCustomer(ValidationFailed):
    """A customer the caller may not see, or one the customers feed has not announced yet:
    the same answer for both, so that it never tells whether another rep's customer exists."""

    slug = "unknown-customer"
    title = "Unknown customer"

    def __init__(self, field: str, customer_id: uuid.UUID) -> None:
        msg = (
            f"no customer {customer_id} that you may see is known to the visits service "
            "(yet: new customers arrive through the customers feed within moments)"
        )
        super().__init__(f"{field}: {msg}", errors=[{"loc": field.split("."), "msg": msg}])
