"""GET /api/v1/audit (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from gateway.identity.audit import service
from gateway.identity.audit.schemas import AuditFilter, AuditRead
from gateway.identity.dependencies import AdminUser
from gateway.identity.routing import SECURITY, identity_router
from servicekit.inputs import Timestamp
from servicekit.pagination import Page, PageDep, make_page
from servicekit.routing import SessionDep

router = identity_router()


@router.get(
    "/audit",
    response_model=Page[AuditRead],
    operation_id="audit_list",
    tags=["audit"],
    summary="Audit trail, newest first (sign-ins, failures, keys, user changes)",
    dependencies=SECURITY,
)
async def list_audit(
    page: PageDep,
    session: SessionDep,
    _admin: AdminUser,
    action: Annotated[
        str | None, Query(max_length=100, description="e.g. login, login.failed")
    ] = None,
    actor_id: Annotated[str | None, Query(max_length=100)] = None,
    subject_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Timestamp | None = None,
) -> Page[AuditRead]:
    where = AuditFilter(action=action, actor_id=actor_id, subject_id=subject_id, since=since)
    rows = await service.list_events(session, page, where)
    items, cursor = make_page(rows, page, lambda a: (a.at, a.id))
    return Page(
        items=[AuditRead.model_validate(a, from_attributes=True) for a in items],
        next_cursor=cursor,
    )
