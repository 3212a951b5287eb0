"""Event types of the targets (analytics' own feed) and their payloads."""

from __future__ import annotations

from typing import Any

TARGET_CREATED = "target.created"
TARGET_UPDATED = "target.updated"
TARGET_DELETED = "target.deleted"
TARGET_DECOMPOSED = "target.decomposed"


def target_facts(target: dict[str, Any]) -> dict[str, Any]:
    return {
        k: target[k]
        for k in (
            "id",
            "metric",
            "period",
            "scope",
            "scope_id",
            "value",
            "parent_id",
            "method",
            "version",
        )
    }


def decomposed(parent: dict[str, Any], children: list[dict[str, Any]], into: str) -> dict[str, Any]:
    return {
        **target_facts(parent),
        "into": into,
        "children": [target_facts(c) for c in children],
    }
