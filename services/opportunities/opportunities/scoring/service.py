"""Scoring models: versions, the active one and its challenger, and their calibration."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.scoring import repository
from opportunities.scoring.access import require_calibration, require_read, require_write
from opportunities.scoring.exceptions import ModelInUse, ScoringModelNotFound
from opportunities.scoring.rules import Scorer, max_points
from opportunities.scoring.schemas import ScoringModelCreate, ScoringModelUpdate
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Conflict, ValidationFailed
from servicekit.ids import new_id
from servicekit.pagination import PageParams


@dataclass(frozen=True, slots=True)
class Scorers:
    """The models a lead is scored by now: the active one decides, the challenger runs beside."""

    active: Scorer
    challenger: Scorer | None
    # Those of them no lead was scored by yet (`used` records that one now is).
    unused: tuple[uuid.UUID, ...] = ()

    @property
    def all(self) -> list[Scorer]:
        return [self.active] if self.challenger is None else [self.active, self.challenger]


async def scorers(session: AsyncSession) -> Scorers:
    rows = await repository.current(session)
    active = next((r for r in rows if r.status == "active"), None)
    if active is None:
        # The migration seeds one and activation only ever swaps it: never without one.
        raise Conflict("no scoring model is active; activate one")
    challenger = next((r for r in rows if r.status == "challenger"), None)
    return Scorers(
        Scorer.of(active),
        None if challenger is None else Scorer.of(challenger),
        tuple(r.id for r in (active, challenger) if r is not None and r.used_at is None),
    )


async def used(session: AsyncSession, scorers: Scorers) -> None:
    """Record that these models scored leads: they are immutable from now on. A model used
    once stays used, so only the ones unused when read are written (most requests: none)."""
    if scorers.unused:
        await repository.mark_used(session, list(scorers.unused), utcnow())


async def get_model(session: AsyncSession, model_id: uuid.UUID, *, lock: bool = False) -> Any:
    row = await repository.get(session, model_id, for_update=lock)
    if row is None:
        raise ScoringModelNotFound(model_id)
    return row


async def visible_model(session: AsyncSession, principal: Principal, model_id: uuid.UUID) -> Any:
    require_read(principal)
    return await get_model(session, model_id)


async def model_for_change(session: AsyncSession, principal: Principal, model_id: uuid.UUID) -> Any:
    """The model, locked for a change (404 when there is none; who may change it is
    `update_model`'s to say)."""
    require_read(principal)
    return await get_model(session, model_id, lock=True)


async def list_models(
    session: AsyncSession, principal: Principal, params: PageParams, status: str | None
) -> tuple[list[Any], str | None]:
    require_read(principal)
    return await repository.page(session, params, status)


async def create_model(
    session: AsyncSession, principal: Principal, body: ScoringModelCreate
) -> Any:
    require_write(principal)
    now = utcnow()
    criteria = [c.model_dump(exclude_none=True) for c in body.criteria]
    return await repository.insert(
        session,
        {
            "id": new_id(),
            "version": await repository.next_version(session),
            "name": body.name,
            "criteria": criteria,
            "threshold": body.threshold,
            "max_points": max_points(criteria),
            "status": "draft",
            "created_at": now,
            "updated_at": now,
            "created_by": principal.sub,
        },
    )


async def update_model(
    session: AsyncSession, principal: Principal, model: Any, body: ScoringModelUpdate
) -> Any:
    """`model` is the locked row (its ETag already checked)."""
    require_write(principal)
    if model.used_at is not None or model.status in ("active", "challenger"):
        raise ModelInUse(
            f"version {model.version} is {model.status} or has scored leads; "
            "create a new version instead"
        )
    given = body.model_dump(exclude_unset=True)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if "name" in given:
        values["name"] = body.name
    criteria = model.criteria
    if body.criteria is not None:
        criteria = [c.model_dump(exclude_none=True) for c in body.criteria]
        values["criteria"] = criteria
        values["max_points"] = max_points(criteria)
    threshold = body.threshold if body.threshold is not None else model.threshold
    if threshold > max_points(criteria):
        raise ValidationFailed.field(
            "threshold", f"above the most points the criteria give ({max_points(criteria)})"
        )
    values["threshold"] = threshold
    return await repository.update(session, model.id, values)


async def activate(session: AsyncSession, principal: Principal, model_id: uuid.UUID) -> Any:
    """The model decides from now on; the one that did is retired (a challenger promoted
    leaves the challenger's place empty)."""
    require_write(principal)
    current = await repository.current(session, lock=True)
    model = await repository.get(session, model_id, for_update=True)
    if model is None:
        raise ScoringModelNotFound(model_id)
    if model.status == "active":
        return model
    now = utcnow()
    await repository.set_status(
        session, [r.id for r in current if r.status == "active"], "retired", now
    )
    return await repository.update(
        session, model.id, {"status": "active", "activated_at": now, "updated_at": now}
    )


async def challenge(session: AsyncSession, principal: Principal, model_id: uuid.UUID) -> Any:
    """Leads are scored by the model beside the active one, which still decides."""
    require_write(principal)
    current = await repository.current(session, lock=True)
    model = await repository.get(session, model_id, for_update=True)
    if model is None:
        raise ScoringModelNotFound(model_id)
    if model.status == "challenger":
        return model
    if model.status == "active":
        raise Conflict("the active model cannot be its own challenger")
    now = utcnow()
    await repository.set_status(
        session, [r.id for r in current if r.status == "challenger"], "retired", now
    )
    return await repository.update(session, model.id, {"status": "challenger", "updated_at": now})


async def retire(session: AsyncSession, principal: Principal, model_id: uuid.UUID) -> Any:
    require_write(principal)
    model = await repository.get(session, model_id, for_update=True)
    if model is None:
        raise ScoringModelNotFound(model_id)
    if model.status == "active":
        raise Conflict("the active model is replaced by activating another, not retired")
    if model.status == "retired":
        return model
    return await repository.update(session, model.id, {"status": "retired", "updated_at": utcnow()})


def _rate(won: int, n: int) -> float | None:
    return None if n == 0 else round(won / n, 4)


async def _calibrate(
    session: AsyncSession,
    model: Any,
    bands: int,
    closed_from: date | None,
    closed_to: date | None,
) -> dict[str, Any]:
    scorer = Scorer.of(model)
    rows = await repository.calibration(session, scorer, bands, closed_from, closed_to)
    per_band: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    split = {True: [0, 0], False: [0, 0]}
    total_n = total_won = 0
    total_sq = 0.0
    for r in rows:
        n, won = int(r.n), int(r.won or 0)
        cell = per_band[int(r.band)]
        cell[0] += n
        cell[1] += won
        cell[2] += float(r.sum_p or 0)
        split[bool(r.qualified)][0] += n
        split[bool(r.qualified)][1] += won
        total_n += n
        total_won += won
        total_sq += float(r.sum_sq or 0)
    top = scorer.max_points
    out_bands = []
    for b in range(bands):
        count, wins, sum_p = per_band.get(b, [0.0, 0.0, 0.0])
        out_bands.append(
            {
                "low": round(top * b / bands),
                "high": round(top * (b + 1) / bands),
                "opportunities": int(count),
                "won": int(wins),
                "win_rate": _rate(int(wins), int(count)),
                "mean_predicted": None if count == 0 else round(sum_p / count, 4),
            }
        )
    return {
        "model_id": model.id,
        "version": model.version,
        "status": model.status,
        "threshold": model.threshold,
        "max_points": top,
        "opportunities": total_n,
        "won": total_won,
        "brier_score": None if total_n == 0 else round(total_sq / total_n, 6),
        "bands": out_bands,
        "qualified": {
            "opportunities": split[True][0],
            "won": split[True][1],
            "win_rate": _rate(split[True][1], split[True][0]),
        },
        "not_qualified": {
            "opportunities": split[False][0],
            "won": split[False][1],
            "win_rate": _rate(split[False][1], split[False][0]),
        },
    }


async def calibration(
    session: AsyncSession,
    principal: Principal,
    model_id: uuid.UUID,
    *,
    bands: int,
    closed_from: date | None,
    closed_to: date | None,
) -> dict[str, Any]:
    """The model scored on the history of closed opportunities from scored leads (recomputed
    from the leads' inputs, so a challenger or a draft is judged on the same history), beside
    the active model."""
    require_calibration(principal)
    if closed_from is not None and closed_to is not None and closed_from >= closed_to:
        raise ValidationFailed.field("from", "must be before 'to'")
    model = await get_model(session, model_id)
    models = [model]
    active = next((r for r in await repository.current(session) if r.status == "active"), None)
    if active is not None and active.id != model.id:
        models.append(active)
    return {
        "period_from": closed_from,
        "period_to": closed_to,
        "models": [await _calibrate(session, m, bands, closed_from, closed_to) for m in models],
    }
