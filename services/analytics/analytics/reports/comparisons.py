"""A figure beside the period before and its target. Pure: figures in, comparisons out.

A rate's change is in percentage points (0.25 then 0.30: +5.00); an amount's or a count's in
per cent of the figure before (200 then 250: +25.00). Either is null when one side is null,
and a change in per cent is null when the figure before is zero (no base to compare with).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from analytics.kpis.definitions import Figure, Number, ratio

HUNDRED = Decimal(100)
PLACES = Decimal("0.01")


def points(now: Number | None, before: Number | None) -> Decimal | None:
    if now is None or before is None:
        return None
    return ((Decimal(now) - Decimal(before)) * HUNDRED).quantize(PLACES, ROUND_HALF_EVEN)


def per_cent(now: Number | None, before: Number | None) -> Decimal | None:
    if now is None or before is None or not before:
        return None
    change = (Decimal(now) - Decimal(before)) / Decimal(before) * HUNDRED
    return change.quantize(PLACES, ROUND_HALF_EVEN)


def compared(
    metric: str,
    now: Number | None,
    before: Number | None,
    *,
    is_rate: bool,
    target: Decimal | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metric": metric,
        "value": now,
        "previous": before,
        "change": points(now, before) if is_rate else per_cent(now, before),
        "change_unit": "points" if is_rate else "per_cent",
    }
    if target is not None:
        out["target"] = target
        out["target_completion"] = None if now is None else ratio(now, target)
    return out


def figure_compared(
    now: Figure, before: Figure, *, is_rate: bool, target: Decimal | None = None
) -> dict[str, Any]:
    return compared(now.metric, now.value, before.value, is_rate=is_rate, target=target)


def funnel(now: Figure, before: Figure) -> dict[str, Any]:
    """The funnel's steps, their conversion rates and the invalid rate, each beside before."""
    assert now.details is not None and before.details is not None
    earlier = {s["step"]: s for s in before.details["steps"]}
    steps = []
    for step in now.details["steps"]:
        then = earlier.get(step["step"], {})
        name = step["step"]
        steps.append(
            {
                "step": name,
                "count": compared(name, step["count"], then.get("count"), is_rate=False),
                "conversion_rate": None
                if name == "received"
                else compared(
                    f"{name}_rate",
                    step["conversion_rate"],
                    then.get("conversion_rate"),
                    is_rate=True,
                ),
            }
        )
    return {
        "steps": steps,
        "conversion_rate": figure_compared(now, before, is_rate=True),
        "invalid_rate": compared(
            "invalid_rate",
            now.details["invalid_rate"],
            before.details["invalid_rate"],
            is_rate=True,
        ),
    }


def stages(now: Figure, before: Figure) -> dict[str, Any]:
    """Each stage's forward conversion beside before, and the bottleneck: the stage with the
    lowest forward conversion in the period (of equal ones, the one more opportunities left,
    then the first by name)."""
    assert now.details is not None and before.details is not None
    earlier = {s["stage"]: s for s in before.details["stages"]}
    rows = [
        {
            "stage": s["stage"],
            "left_forward": s["left_forward"],
            "left": s["left"],
            "conversion_rate": compared(
                s["stage"],
                s["conversion_rate"],
                earlier.get(s["stage"], {}).get("conversion_rate"),
                is_rate=True,
            ),
        }
        for s in now.details["stages"]
    ]
    ranked = sorted(
        (s for s in now.details["stages"] if s["conversion_rate"] is not None),
        key=lambda s: (s["conversion_rate"], -s["left"], s["stage"]),
    )
    return {"stages": rows, "bottleneck": ranked[0]["stage"] if ranked else None}
