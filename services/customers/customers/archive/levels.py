"""Levels A/B/C: cadence per level and the level proposed from purchases and potential.

A customer is proposed A when its trailing-12-month purchases or its estimated potential reach
A's threshold, else B by B's thresholds, else C. Purchases come from the commerce feature's
SQL source (`ArchiveExtensions.purchases`); without one they count as zero. The same rule as
SQL, for the list of customers whose level differs: `repository.level_proposals_page`.
"""

from __future__ import annotations

from decimal import Decimal

from customers.archive.settings import LevelThresholds


def proposed_level(
    purchases_12m: Decimal, potential: Decimal | None, thresholds: LevelThresholds
) -> str:
    pot = potential or Decimal(0)
    for level in ("A", "B"):
        t = getattr(thresholds, level)
        if purchases_12m >= t.purchases_12m or pot >= t.estimated_potential:
            return level
    return "C"
