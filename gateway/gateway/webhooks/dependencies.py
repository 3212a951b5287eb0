"""`VisibleWebhook` / `ChangeableWebhook`: the subscription of the path under the access rule
(404 when the caller may not see it; the second locks it for the change), and the feature's
shared objects."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from starlette.requests import Request

from gateway.identity.dependencies import CurrentIdentity
from gateway.webhooks import service
from gateway.webhooks.access import require_manager
from gateway.webhooks.models import WebhookEndpoint
from gateway.webhooks.runtime import Webhooks
from servicekit.auth import Principal
from servicekit.routing import SessionDep


def get_webhooks(request: Request) -> Webhooks:
    webhooks: Webhooks = request.app.state.webhooks
    return webhooks


async def webhook_manager(principal: CurrentIdentity) -> Principal:
    require_manager(principal)
    return principal


async def visible_webhook(
    webhook_id: Annotated[uuid.UUID, PathParam()],
    principal: CurrentIdentity,
    session: SessionDep,
) -> WebhookEndpoint:
    return await service.visible_webhook(session, principal, webhook_id, lock=False)


async def changeable_webhook(
    webhook_id: Annotated[uuid.UUID, PathParam()],
    principal: CurrentIdentity,
    session: SessionDep,
) -> WebhookEndpoint:
    return await service.visible_webhook(session, principal, webhook_id, lock=True)


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]
WebhookManager = Annotated[Principal, Depends(webhook_manager)]
VisibleWebhook = Annotated[WebhookEndpoint, Depends(visible_webhook)]
ChangeableWebhook = Annotated[WebhookEndpoint, Depends(changeable_webhook)]
