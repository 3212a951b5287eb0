"""HTTP of the complaints (`/api/v1/complaints`) and market reports
(`/api/v1/market-reports`): one set of endpoints, built once per kind.

No `from __future__ import annotations` here: the endpoints' dependencies are local to
`build`, and FastAPI resolves string annotations in the module's globals only."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from servicekit.app import CurrentPrincipal
from servicekit.etag import OptionalIfMatch, Precondition
from servicekit.pagination import Page, PageDep, PageParams, make_page
from servicekit.routing import SessionDep, kit_router
from visits.cases import repository, service
from visits.cases.schemas import (
    CaseChangeRead,
    CaseCreate,
    CaseListQuery,
    CaseRead,
    NoteBody,
    ReopenBody,
    ResolveBody,
)
from visits.cases.service import COMPLAINT, MARKET, Kind
from visits.dependencies import SettingsDep
from visits.responses import answers, listing, record

BY_ID = "/{case_id:uuid}"


def build(kind: Kind, prefix: str, tag: str) -> APIRouter:
    router = kit_router(prefix=prefix, tags=[tag])

    async def visible(case_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
        return await service.visible_case(session, principal, kind, case_id)

    async def locked(case_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
        return await service.visible_case(session, principal, kind, case_id, for_update=True)

    Visible = Annotated[Any, Depends(visible)]
    Locked = Annotated[Any, Depends(locked)]
    missing = (
        f"No such {kind.noun}, or one the caller may not see (another rep's is answered the same)"
    )
    moved = answers(
        missing=missing,
        conflict=f"Not possible in the {kind.noun}'s state (open -> in_progress -> resolved -> "
        "closed; reopened from resolved or closed)",
    )

    @router.post(
        "",
        status_code=201,
        response_model=CaseRead,
        responses=answers(
            created=True,
            invalid="A field is wrong (`errors` names it): a visit or customer the caller may "
            "not see, a complaint without its customer",
        ),
        summary=f"Raise a {kind.noun}",
    )
    async def raise_case(
        body: CaseCreate, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
    ) -> Response:
        case = await service.raise_case(session, principal, settings, kind, body)
        return record(case, case.version, status=201, location=f"{prefix}/{case.id}")

    @router.get(
        "", response_model=Page[CaseRead], summary=f"{kind.noun.capitalize()}s, newest first"
    )
    async def list_cases(
        query: Annotated[CaseListQuery, Query()],
        session: SessionDep,
        principal: CurrentPrincipal,
        settings: SettingsDep,
    ) -> Response:
        items, cursor = await service.list_cases(
            session, principal, settings, kind, query, PageParams(query.limit, query.cursor)
        )
        return listing(items, cursor)

    @router.get(
        BY_ID, response_model=CaseRead, responses=answers(missing=missing), summary=f"A {kind.noun}"
    )
    async def get_case(case: Visible) -> Response:
        result = service.read(case)
        return record(result, result.version)

    @router.get(
        BY_ID + "/history",
        response_model=Page[CaseChangeRead],
        responses=answers(record=False, missing=missing),
        summary="Every change of state",
    )
    async def history(case: Visible, session: SessionDep, page: PageDep) -> Response:
        rows = await repository.changes_page(session, case.id, page)
        items, cursor = make_page(rows, page, lambda r: [r.id])
        return listing([CaseChangeRead.model_validate(r) for r in items], cursor)

    async def move(
        if_match: Precondition,
        case: Any,
        session: Any,
        principal: Any,
        action: str,
        note: str | None,
    ) -> Response:
        if_match.check(case.version)
        result = await service.transition(session, principal, kind, case, action, note)
        return record(result, result.version)

    @router.post(
        BY_ID + "/start",
        response_model=CaseRead,
        responses=moved,
        summary="Work on it (in progress)",
    )
    async def start(
        if_match: OptionalIfMatch,
        case: Locked,
        session: SessionDep,
        principal: CurrentPrincipal,
        body: NoteBody | None = None,
    ) -> Response:
        return await move(if_match, case, session, principal, "start", body.note if body else None)

    @router.post(BY_ID + "/resolve", response_model=CaseRead, responses=moved, summary="Resolve it")
    async def resolve(
        if_match: OptionalIfMatch,
        body: ResolveBody,
        case: Locked,
        session: SessionDep,
        principal: CurrentPrincipal,
    ) -> Response:
        return await move(if_match, case, session, principal, "resolve", body.resolution)

    @router.post(
        BY_ID + "/close", response_model=CaseRead, responses=moved, summary="Close a resolved one"
    )
    async def close(
        if_match: OptionalIfMatch,
        case: Locked,
        session: SessionDep,
        principal: CurrentPrincipal,
        body: NoteBody | None = None,
    ) -> Response:
        return await move(if_match, case, session, principal, "close", body.note if body else None)

    @router.post(
        BY_ID + "/reopen", response_model=CaseRead, responses=moved, summary="Reopen it, with why"
    )
    async def reopen(
        if_match: OptionalIfMatch,
        body: ReopenBody,
        case: Locked,
        session: SessionDep,
        principal: CurrentPrincipal,
    ) -> Response:
        return await move(if_match, case, session, principal, "reopen", body.reason)

    return router


complaints_router = build(COMPLAINT, "/api/v1/complaints", "complaints")
market_reports_router = build(MARKET, "/api/v1/market-reports", "market reports")
