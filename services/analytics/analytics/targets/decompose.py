"""Splitting a target's value among its children. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal


def split(total: Decimal, weights: Sequence[Decimal], unit: Decimal) -> list[Decimal]:
    """`total` in proportion to `weights`, each share rounded down to `unit` (a cent, or one
    for counts); what rounding leaves over goes to the largest share (the first of equals), so
    the shares sum to `total` exactly. ValueError when the weights are not positive."""
    if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("the weights must be zero or more, and not all zero")
    whole = sum(weights, Decimal(0))
    exact = [total * w / whole for w in weights]
    shares = [(e / unit).to_integral_value(ROUND_FLOOR) * unit for e in exact]
    largest = max(range(len(exact)), key=lambda i: (exact[i], -i))
    shares[largest] += total - sum(shares, Decimal(0))
    return shares
