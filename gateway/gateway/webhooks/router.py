"""/api/v1/webhooks: subscriptions (admins, and keys with `webhooks:manage` for their own), the
secret shown once and rotated, a test event, the delivery log and replays."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from gateway.identity.dependencies import ClientAddress
from gateway.identity.routing import API_PREFIX, SECURITY, identity_router
from gateway.webhooks import service
from gateway.webhooks.dependencies import (
    ChangeableWebhook,
    VisibleWebhook,
    WebhookManager,
    WebhooksDep,
)
from gateway.webhooks.models import WebhookEndpoint
from gateway.webhooks.schemas import (
    DeliveryQuery,
    DeliveryRead,
    ReplayRead,
    SecretRotated,
    SecretRotation,
    TestResult,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from servicekit.app import json_response
from servicekit.etag import IfMatch, etag_for
from servicekit.pagination import Page, PageDep, make_page
from servicekit.routing import SessionDep

router = identity_router()
PATH = "/webhooks"
ITEM = PATH + "/{webhook_id:uuid}"
TAGS: list[Any] = ["webhooks"]
# Answers that carry a secret are never stored by a cache on the way.
NO_STORE = {"Cache-Control": "no-store"}


def _read(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return WebhookRead.model_validate(
        {**endpoint.model_dump(), "events": endpoint.event_types}
    ).model_dump(mode="json")


def _replay(replay: Any) -> dict[str, Any]:
    return ReplayRead.model_validate(
        {**replay._mapping, "webhook_id": replay.endpoint_id}
    ).model_dump(mode="json")


@router.post(
    PATH,
    status_code=201,
    response_model=WebhookCreated,
    tags=TAGS,
    summary="Subscribe a URL to event types; the signing secret is in `secret`, shown this once",
    dependencies=SECURITY,
)
async def create_webhook(
    body: WebhookCreate,
    session: SessionDep,
    principal: WebhookManager,
    webhooks: WebhooksDep,
    address: ClientAddress,
) -> Response:
    endpoint = await service.create_webhook(session, webhooks, principal, body, address)
    headers = {
        "Location": f"{API_PREFIX}{PATH}/{endpoint.id}",
        "ETag": etag_for(endpoint.version),
        **NO_STORE,
    }
    return json_response(_read(endpoint) | {"secret": endpoint.secret}, 201, headers)


@router.get(PATH, response_model=Page[WebhookRead], tags=TAGS, dependencies=SECURITY)
async def list_webhooks(
    page: PageDep, session: SessionDep, principal: WebhookManager, active: bool | None = None
) -> Response:
    rows = await service.list_webhooks(session, principal, page, active=active)
    items, cursor = make_page(rows, page, lambda e: (e.created_at, e.id))
    return json_response({"items": [_read(e) for e in items], "next_cursor": cursor})


@router.get(ITEM, response_model=WebhookRead, tags=TAGS, dependencies=SECURITY)
async def get_webhook(endpoint: VisibleWebhook) -> Response:
    return json_response(_read(endpoint), headers={"ETag": etag_for(endpoint.version)})


@router.patch(
    ITEM,
    response_model=WebhookRead,
    tags=TAGS,
    summary="Change a subscription (If-Match); `active: true` turns a disabled one on again",
    dependencies=SECURITY,
)
async def update_webhook(
    body: WebhookUpdate,
    if_match: IfMatch,
    endpoint: ChangeableWebhook,
    session: SessionDep,
    principal: WebhookManager,
    webhooks: WebhooksDep,
    address: ClientAddress,
) -> Response:
    if_match.check(endpoint.version)
    endpoint = await service.update_webhook(session, webhooks, principal, endpoint, body, address)
    return json_response(_read(endpoint), headers={"ETag": etag_for(endpoint.version)})


@router.delete(
    ITEM,
    status_code=204,
    tags=TAGS,
    summary="Delete a subscription, its queue and its log",
    dependencies=SECURITY,
)
async def delete_webhook(
    endpoint: ChangeableWebhook,
    session: SessionDep,
    principal: WebhookManager,
    address: ClientAddress,
) -> Response:
    await service.delete_webhook(session, principal, endpoint, address)
    return Response(status_code=204)


@router.post(
    ITEM + "/rotate-secret",
    response_model=SecretRotated,
    tags=TAGS,
    summary="A new signing secret, shown this once; the old one signs too until the overlap ends",
    dependencies=SECURITY,
)
async def rotate_secret(
    endpoint: ChangeableWebhook,
    session: SessionDep,
    principal: WebhookManager,
    webhooks: WebhooksDep,
    address: ClientAddress,
    body: SecretRotation | None = None,
) -> Response:
    secret = await service.rotate_secret(
        session, webhooks, principal, endpoint, body or SecretRotation(), address
    )
    payload = SecretRotated(
        id=endpoint.id,
        secret=secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
    ).model_dump(mode="json")
    return json_response(payload, headers={"ETag": etag_for(endpoint.version), **NO_STORE})


@router.post(
    ITEM + "/test",
    response_model=TestResult,
    tags=TAGS,
    summary="Send a `webhook.test` event now and answer what the endpoint replied",
    dependencies=SECURITY,
)
async def test_webhook(
    endpoint: VisibleWebhook, session: SessionDep, webhooks: WebhooksDep
) -> TestResult:
    return await service.send_test(session, webhooks, endpoint)


@router.get(
    ITEM + "/deliveries",
    response_model=Page[DeliveryRead],
    tags=TAGS,
    summary="The delivery log, newest first: each delivery with every attempt",
    dependencies=SECURITY,
)
async def list_deliveries(
    endpoint: VisibleWebhook,
    session: SessionDep,
    page: PageDep,
    query: Annotated[DeliveryQuery, Query()],
) -> Page[DeliveryRead]:
    rows = await service.list_deliveries(session, endpoint, page, query)
    items, cursor = make_page(rows, page, lambda d: (d.id,))
    return Page(items=items, next_cursor=cursor)


@router.post(
    ITEM + "/replay",
    status_code=202,
    response_model=ReplayRead,
    tags=TAGS,
    summary="Send past events again, from a time or an event id; the worker queues them",
    dependencies=SECURITY,
)
async def replay(
    endpoint: VisibleWebhook,
    session: SessionDep,
    principal: WebhookManager,
    address: ClientAddress,
    start: Annotated[
        str,
        Query(
            alias="from",
            min_length=1,
            max_length=64,
            description="An RFC 3339 time, or the id of an event in the delivery log",
        ),
    ],
) -> Response:
    found = await service.start_replay(session, principal, endpoint, start, address)
    location = f"{API_PREFIX}{PATH}/{endpoint.id}/replays/{found.id}"
    return json_response(_replay(found), 202, {"Location": location})


@router.get(
    ITEM + "/replays/{replay_id:uuid}", response_model=ReplayRead, tags=TAGS, dependencies=SECURITY
)
async def get_replay(
    endpoint: VisibleWebhook, session: SessionDep, replay_id: uuid.UUID
) -> Response:
    return json_response(_replay(await service.get_replay(session, endpoint, replay_id)))
