"""Signing secrets and the Standard Webhooks signature (`standardwebhooks`, the scheme's own
library): `Webhook-Signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one entry per
secret that signs (two during a rotation's overlap)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "Fieldforce-Webhooks/1"


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, the form receivers' libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(signing_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    at = datetime.fromtimestamp(timestamp, UTC)
    text = body.decode()
    return " ".join(Webhook(s).sign(message_id, at, text) for s in signing_secrets)


def headers(
    signing_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one attempt: the id is the event's, the same on every retry."""
    return {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature(signing_secrets, message_id, timestamp, body),
    }


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign now: the current one, and the one before it during the overlap
    that follows a rotation (a receiver holding either verifies)."""
    if previous and previous_expires_at is not None and previous_expires_at > now:
        return [secret, previous]
    return [secret]
