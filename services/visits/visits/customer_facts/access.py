"""Which customers a principal may visit and plan: the customers service's rule, applied to the
read model (owner and team as its feed announced them).

- admin, integration key (with a visits scope): every customer;
- rep: their own, and the pool (unowned customers);
- manager: their own, the pool, and their visible teams' customers.
"""

from __future__ import annotations

import uuid

from servicekit.auth import Principal
from visits.access import sees_everything


def can_see(principal: Principal, owner_id: uuid.UUID | None, team_id: uuid.UUID | None) -> bool:
    if sees_everything(principal):
        return True
    if owner_id is None:
        return principal.is_manager or principal.is_rep
    if owner_id == principal.user_id:
        return True
    return principal.is_manager and principal.sees_team(team_id)
