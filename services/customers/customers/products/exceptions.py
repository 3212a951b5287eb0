"""The catalogue's failures."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class ProductNotFound(NotFound):
    def __init__(self, product_id: uuid.UUID) -> None:
        super().__init__(f"no product {product_id}")


class SkuTaken(Conflict):
    slug = "sku-taken"
    title = "The sku names another product"

    def __init__(self, sku: str, existing_id: uuid.UUID | None) -> None:
        super().__init__(
            f"sku {sku!r} already names a product",
            existing_id=None if existing_id is None else str(existing_id),
        )
