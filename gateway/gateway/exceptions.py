"""The edge's own problems: a call it will not forward as framed, a service that fails it."""

from __future__ import annotations

from servicekit.errors import BadRequest, DomainError

# Said whenever the call may have reached the service: the client cannot tell whether it acted.
MAY_HAVE_COMPLETED = (
    "it may still have completed the request: retrying with the same Idempotency-Key is safe"
)


class BadFraming(BadRequest):
    """A request whose length two parties could read differently (RFC 9112 §6.3); the
    connection is closed after the answer, since where the next request starts is unknown."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class TransferCodingNotImplemented(DomainError):
    """RFC 9112 §6.1: a transfer coding the gateway does not decode (only chunked is)."""

    status, slug, title = 501, "not-implemented", "Transfer coding not implemented"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class BadGateway(DomainError):
    status, slug, title = 502, "bad-gateway", "The service could not be reached"


class GatewayTimeout(DomainError):
    status, slug, title = 504, "gateway-timeout", "The service did not answer in time"
