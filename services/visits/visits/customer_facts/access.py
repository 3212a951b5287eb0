"""Which customers a principal may visit and plan: the customers service's rule (the kit's
`sees_customer`), applied to the read model (owner and team as its feed announced them).

- admin, integration key (with a visits scope): every customer;
- rep: their own, and the pool (unowned customers);
- manager: their own, the pool, and their visible teams' customers.
"""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal, sees_customer


def can_see(principal: Principal, owner_id: uuid.UUID | None, team_id: uuid.UUID | None) -> bool:
    # A key's visits scope is checked before; it needs no customers scope to visit.
    return principal.kind == "key" or sees_customer(principal, owner_id, team_id)


def see_params(principal: Principal) -> dict[str, Any]:
    """`can_see` as the values of `repository.visible_clause`'s parameters: one statement's
    shape for every principal."""
    everything = principal.kind == "key" or principal.is_admin
    return {
        "see_all": everything,
        "see_pool": principal.is_manager or principal.is_rep,
        "see_owner": principal.user_id,
        "see_teams": principal.team_uuids() if principal.is_manager else [],
    }
