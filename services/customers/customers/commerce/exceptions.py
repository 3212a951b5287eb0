"""Commerce failures, each carrying its status (the kit renders them as problem documents)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from servicekit.errors import Conflict, NotFound, ValidationFailed


class ContactNotFound(NotFound):
    def __init__(self, contact_id: uuid.UUID) -> None:
        super().__init__(f"no contact {contact_id} on this customer")


class OrderNotFound(NotFound):
    def __init__(self, order_id: uuid.UUID) -> None:
        super().__init__(f"no order {order_id}")


class PaymentNotFound(NotFound):
    def __init__(self, payment_id: uuid.UUID) -> None:
        super().__init__(f"no payment {payment_id}")


class CustomerMerged(Conflict):
    """Writes to a merged customer go to its survivor; the caller is told which one."""

    def __init__(self, customer_id: uuid.UUID, survivor_id: uuid.UUID | None) -> None:
        super().__init__(
            f"customer {customer_id} was merged into {survivor_id}; use that customer",
            merged_into_id=str(survivor_id) if survivor_id else None,
        )


class ExternalRefTaken(Conflict):
    """`existing_id` None: the other record belongs to a customer the caller may not see."""

    def __init__(self, kind: str, existing_id: uuid.UUID | None) -> None:
        if existing_id is None:
            super().__init__(
                f"this source's external_ref already names a {kind} of a customer you cannot see"
            )
            return
        super().__init__(
            f"this source's external_ref already names {kind} {existing_id} elsewhere",
            existing_id=str(existing_id),
        )


def amount_mismatch(amount: Decimal, total: Decimal) -> ValidationFailed:
    return ValidationFailed.field("amount", f"is {amount} but the lines add up to {total}")


def overpayment(amount: Decimal, outstanding: Decimal) -> ValidationFailed:
    return ValidationFailed.field(
        "amount", f"{amount} is more than the {outstanding} outstanding on this order"
    )
