"""Catalogue events: a consumer keeps its own copy of the catalogue (targets per product and
per category) from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from customers.archive.events import what_changed

PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"

_FACTS = ("id", "sku", "name", "category", "unit", "active", "version")


def product_facts(product: Any) -> dict[str, Any]:
    get = product.get if isinstance(product, Mapping) else lambda k: getattr(product, k)
    return {k: get(k) for k in _FACTS}


def updated(
    product: Any, changes: Mapping[str, tuple[Any, Any]], actor: str | None
) -> dict[str, Any]:
    return {**product_facts(product), **what_changed(changes), "updated_by": actor}
