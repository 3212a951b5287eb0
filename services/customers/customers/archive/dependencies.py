"""Annotated dependencies: the archive's extensions, and customers that return the 404 (or
403) themselves."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from customers.archive.access import require_read
from customers.archive.extensions import STATE_KEY, ArchiveExtensions
from customers.archive.models import Customer
from customers.archive.service import get_changeable_customer, get_visible_customer
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep


async def _extensions(request: Request) -> ArchiveExtensions:
    extensions: ArchiveExtensions = getattr(request.app.state, STATE_KEY)
    return extensions


async def _visible(
    customer_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Customer:
    require_read(principal)
    return await get_visible_customer(session, principal, customer_id)


async def _changeable(
    customer_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Customer:
    require_read(principal)
    return await get_changeable_customer(session, principal, customer_id)


# What the service's other features add to the archive (built in `customers.main`).
Extensions = Annotated[ArchiveExtensions, Depends(_extensions)]
# The customer of the path, visible to the caller (else 404).
VisibleCustomer = Annotated[Customer, Depends(_visible)]
# The customer of the path, locked, and the caller's to change (404 / 403 otherwise).
ChangeableCustomer = Annotated[Customer, Depends(_changeable)]
