"""A scoring model as the code applies it: points per criterion from the lead's evaluation
inputs, the total against the threshold, and the explanation of every score. Pure: no session.

A model is data (`scoring_models.criteria`): criteria, each with options worth points. An input
a model does not know (a criterion it lacks, an option it does not list) is worth 0 points in
it; the lead is accepted as long as one of the models scoring it knows the input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Criterion:
    key: str
    label: str
    points: Mapping[str, int]  # option value -> points, in the model's order
    max_points: int


@dataclass(frozen=True, slots=True)
class Scorer:
    id: uuid.UUID
    version: int
    threshold: int
    max_points: int
    criteria: tuple[Criterion, ...]

    @classmethod
    def of(cls, row: Any) -> Scorer:
        """From a `scoring_models` row (or anything with its fields)."""
        criteria = tuple(
            Criterion(
                key=c["key"],
                label=c.get("label") or c["key"],
                points={o["value"]: int(o["points"]) for o in c["options"]},
                max_points=max(int(o["points"]) for o in c["options"]),
            )
            for c in row.criteria
        )
        return cls(row.id, row.version, row.threshold, row.max_points, criteria)

    def points(self, evaluation: Mapping[str, Any]) -> int:
        total = 0
        for criterion in self.criteria:
            value = evaluation.get(criterion.key)
            if value is not None:
                total += criterion.points.get(value, 0)
        return total

    def qualifies(self, points: int) -> bool:
        return points >= self.threshold

    def explain(self, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        """The score with each criterion's contribution, the model's version and threshold."""
        items: list[dict[str, Any]] = []
        for criterion in self.criteria:
            value = evaluation.get(criterion.key)
            items.append(
                {
                    "key": criterion.key,
                    "label": criterion.label,
                    "value": value,
                    "points": criterion.points.get(value, 0) if value is not None else 0,
                    "max_points": criterion.max_points,
                }
            )
        points = sum(i["points"] for i in items)
        return {
            "model_id": self.id,
            "version": self.version,
            "points": points,
            "max_points": self.max_points,
            "threshold": self.threshold,
            "qualified": self.qualifies(points),
            "criteria": items,
        }


def max_points(criteria: Iterable[Mapping[str, Any]]) -> int:
    return sum(max(int(o["points"]) for o in c["options"]) for c in criteria)


class InputCheck:
    """`input_errors` for many leads: every known (criterion, option) pair, and each known
    criterion left open (None), gathered once; a lead's inputs are then one subset test."""

    def __init__(self, scorers: Sequence[Scorer]) -> None:
        self.scorers = scorers
        known: set[tuple[str, str | None]] = set()
        for scorer in scorers:
            for criterion in scorer.criteria:
                known.add((criterion.key, None))
                known.update((criterion.key, option) for option in criterion.points)
        self.known = frozenset(known)

    def errors(self, evaluation: Mapping[str, Any]) -> list[str]:
        if self.known.issuperset(evaluation.items()):
            return []
        return input_errors(self.scorers, evaluation)


def input_errors(scorers: Sequence[Scorer], evaluation: Mapping[str, Any]) -> list[str]:
    """What in `evaluation` none of the scoring models knows (empty: every input is known)."""
    errors = []
    for key, value in evaluation.items():
        known = [c for s in scorers for c in s.criteria if c.key == key]
        if not known:
            names = sorted({c.key for s in scorers for c in s.criteria})
            errors.append(f"{key}: not a criterion of the scoring model ({', '.join(names)})")
        elif value is not None and not any(value in c.points for c in known):
            options = sorted({o for c in known for o in c.points})
            errors.append(f"{key}: {value!r} is not one of {', '.join(options)}")
    return errors
