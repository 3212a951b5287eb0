"""What a rep's deactivation does here (identity's feed, through the kit's directory; wired
in `main.py` as a directory reaction, as customers hands a deactivated rep's customers over).

- Their open leads (assigned, contacted) go back through assignment: the rules, then round
  robin or least load among their team's *active* reps; a lead no rule places waits in the
  unassigned (or its rule's team's) queue (`leads.service.hand_back`).
- Their open opportunities go to their nearest active manager, in the same team's pipeline
  (`pipeline.service.hand_to_manager`); with no active manager to take them they stay with
  the deactivated rep, listed by `GET /api/v1/opportunities?orphaned=true`.

Every move is in the history (the lead's assignments, the opportunity's owners) with `by`
`system` and reason `owner_deactivated`, and announced by the usual events. The reaction runs
in the identity consumer's transaction, after the directory marked the rep inactive (so the
rep is never picked again); a replayed event finds nothing left with the rep. Reactivation
gives nothing back: what was handed on stays with its new owners.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.config import Settings
from opportunities.leads.service import OWNER_DEACTIVATED, SYSTEM, hand_back
from opportunities.pipeline.service import hand_to_manager
from servicekit.directory import USER_DEACTIVATED, DirectoryChange, Reaction


def on_identity_change(settings: Settings) -> Reaction:
    """The reaction, bound to the app's settings (stages and their probabilities)."""

    async def react(session: AsyncSession, change: DirectoryChange) -> None:
        user = change.user
        if change.type != USER_DEACTIVATED or user is None or user.active:
            return
        await hand_back(session, settings, user.id)
        await hand_to_manager(session, settings, user.id, by=SYSTEM, reason=OWNER_DEACTIVATED)

    return react
