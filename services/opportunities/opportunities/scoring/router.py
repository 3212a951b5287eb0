"""HTTP of the scoring models, at `/api/v1/scoring-models`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from opportunities.dependencies import SettingsDep
from opportunities.scoring import service
from opportunities.scoring.dependencies import LockedModel, VisibleModel
from opportunities.scoring.schemas import (
    Calibration,
    CalibrationQuery,
    ModelStatus,
    ScoringModelCreate,
    ScoringModelRead,
    ScoringModelUpdate,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.etag import IfMatch, etag_for
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/scoring-models", tags=["scoring models"])
BY_ID = "/{model_id:uuid}"
IN_USE = "The model is active, a challenger, or has scored leads: create a new version"


def _answer(row: Any, status: int = 200, **headers: str) -> Response:
    body = ScoringModelRead.model_validate(row, from_attributes=True).model_dump(mode="json")
    return json_response(body, status, {"ETag": etag_for(row.revision), **headers})


@router.get(
    "",
    response_model=Page[ScoringModelRead],
    summary="The scoring models, newest first",
    operation_id="scoring_models_list",
)
async def list_models(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: ModelStatus | None = None,
) -> Page[ScoringModelRead]:
    rows, cursor = await service.list_models(session, principal, page, status)
    return Page(
        items=[ScoringModelRead.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=cursor,
    )


@router.post(
    "",
    status_code=201,
    response_model=ScoringModelRead,
    summary="Create a new version (a draft; admin)",
    operation_id="scoring_models_create",
    responses={201: with_headers("ETag", "Location")},
)
async def create_model(
    body: ScoringModelCreate, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    row = await service.create_model(session, principal, body)
    return _answer(row, 201, Location=f"{router.prefix}/{row.id}")


@router.get(
    BY_ID,
    response_model=ScoringModelRead,
    summary="One scoring model",
    operation_id="scoring_models_get",
    responses={200: with_headers("ETag")},
)
async def get_model(model: VisibleModel) -> Response:
    return _answer(model)


@router.patch(
    BY_ID,
    response_model=ScoringModelRead,
    summary="Change a draft that never scored a lead (If-Match; admin)",
    operation_id="scoring_models_update",
    responses={409: {"description": IN_USE}},
)
async def patch_model(
    model: LockedModel,
    body: ScoringModelUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatch,
) -> Response:
    if_match.check(model.revision)
    return _answer(await service.update_model(session, principal, model, body))


@router.post(
    BY_ID + "/activate",
    response_model=ScoringModelRead,
    summary="Make it the model that decides (admin); the previous one is retired",
    operation_id="scoring_models_activate",
    responses={200: with_headers("ETag")},
)
async def activate(
    model_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    return _answer(await service.activate(session, principal, model_id))


@router.post(
    BY_ID + "/challenge",
    response_model=ScoringModelRead,
    summary="Score leads with it beside the active model (admin)",
    operation_id="scoring_models_challenge",
    responses={200: with_headers("ETag")},
)
async def challenge(
    model_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    return _answer(await service.challenge(session, principal, model_id))


@router.post(
    BY_ID + "/retire",
    response_model=ScoringModelRead,
    summary="Stop a challenger",
    operation_id="scoring_models_retire",
    responses={200: with_headers("ETag")},
)
async def retire(model_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Response:
    return _answer(await service.retire(session, principal, model_id))


@router.get(
    BY_ID + "/calibration",
    response_model=Calibration,
    summary="Win rate per score band and Brier score on closed opportunities",
    description="Closed opportunities that came from scored leads, each lead scored by this "
    "model from its evaluation inputs (so a challenger or a draft is judged on the same "
    "history as the active model, which is listed beside it): the win rate per band of "
    "points, above and below the threshold, and the Brier score of points / max points as "
    "the predicted chance of winning. `from`/`to`: closed in [from, to).",
    operation_id="scoring_models_calibration",
)
async def calibration(
    model_id: uuid.UUID,
    query: Annotated[CalibrationQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    result = await service.calibration(
        session,
        principal,
        model_id,
        bands=settings.calibration_bands,
        closed_from=query.from_,
        closed_to=query.to,
    )
    return json_response(Calibration.model_validate(result).model_dump(mode="json"))
