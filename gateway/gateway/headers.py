"""Which headers of a call go on to the service, and which of its answer come back.

Names arrive lower-cased from the server (ASGI) and from httptools' answers only as the service
wrote them, hence the `lower()` on the way back.
"""

from __future__ import annotations

import dataclasses

# RFC 9110 §7.6.1 hop-by-hop fields, plus the historic Proxy-* and Keep-Alive.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# What a client could use to pose as someone: services trust only the internal token we sign,
# and the client's own credentials are none of the service's business.
IDENTITY_HEADERS = frozenset(
    {
        "x-internal-token",
        "authorization",
        "x-api-key",
        "cookie",
        "x-user-id",
        "x-user-role",
        "x-user-email",
        "x-team-id",
        "x-principal",
        "x-scopes",
        "x-forwarded-user",
        "x-remote-user",
        "remote-user",
    }
)
# Set by the gateway itself, never taken from the client.
OWN_REQUEST_HEADERS = frozenset(
    {
        "host",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
    }
)
# The gateway's server adds its own; a second copy from upstream would duplicate them.
OWN_RESPONSE_HEADERS = frozenset({"server", "date", "x-request-id"})

_DROPPED_REQUEST_HEADERS = frozenset(
    name.encode("latin-1") for name in HOP_BY_HOP | IDENTITY_HEADERS | OWN_REQUEST_HEADERS
)
_DROPPED_PREFIXES = (b"x-auth-", b"x-user-")
_DROPPED_RESPONSE_HEADERS = frozenset(
    name.encode("latin-1") for name in HOP_BY_HOP | OWN_RESPONSE_HEADERS
)


@dataclasses.dataclass(slots=True)
class Incoming:
    """What the edge needs of a call's request headers, found in one pass (`read_headers`)."""

    kept: list[tuple[bytes, bytes]]  # the headers that go upstream
    length: bytes | None = None  # Content-Length
    transfer_encoding: bytes | None = None  # every Transfer-Encoding value, comma-joined
    authorization: bytes | None = None
    api_key: bytes | None = None
    # A service's call on a caller's behalf: the internal token it was given (`delegation`).
    delegated: bytes | None = None
    host: bytes | None = None
    connection: bytes | None = None
    # Why the body's length is ambiguous, if it is (RFC 9112 §6.3): the call is refused.
    bad_framing: str | None = None

    @property
    def has_body(self) -> bool:
        return self.length is not None or self.transfer_encoding is not None


def _joined(previous: bytes | None, value: bytes) -> bytes:
    return value if previous is None else previous + b"," + value


def read_headers(headers: list[tuple[bytes, bytes]]) -> Incoming:
    incoming = Incoming([])
    kept = incoming.kept
    for name, value in headers:
        if name in _DROPPED_REQUEST_HEADERS:
            if name == b"authorization":
                if incoming.authorization is None:
                    incoming.authorization = value
            elif name == b"x-api-key":
                if incoming.api_key is None:
                    incoming.api_key = value
            elif name == b"x-internal-token":
                if incoming.delegated is None:
                    incoming.delegated = value
            elif name == b"host":
                incoming.host = value
            elif name == b"connection":
                incoming.connection = _joined(incoming.connection, value)
            elif name == b"transfer-encoding":
                incoming.transfer_encoding = _joined(incoming.transfer_encoding, value)
        elif name.startswith(_DROPPED_PREFIXES):
            continue
        else:
            if name == b"content-length":
                if incoming.length is not None:
                    incoming.bad_framing = "more than one Content-Length"
                elif not value.isdigit():
                    incoming.bad_framing = "a Content-Length that is not a number"
                incoming.length = value
            kept.append((name, value))
    if incoming.length is not None and incoming.transfer_encoding is not None:
        incoming.bad_framing = "both Content-Length and Transfer-Encoding"
    if incoming.connection is not None:
        kept[:] = without_connection_listed(kept, incoming.connection)
    return incoming


def without_connection_listed(
    headers: list[tuple[bytes, bytes]], connection: bytes
) -> list[tuple[bytes, bytes]]:
    """RFC 9110 §7.6.1: the fields a Connection header names are hop-by-hop too."""
    listed = {v.strip().lower() for v in connection.split(b",")} - {b""}
    return [(n, v) for n, v in headers if n.lower() not in listed]


def answer_headers(
    raw: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """A service's answer headers as the client gets them: names lower-cased, hop-by-hop ones
    (and those its Connection header lists) and the gateway's own dropped, `extra` added."""
    out: list[tuple[bytes, bytes]] = []
    connection: bytes | None = None
    for name, value in raw:
        lname = name.lower()
        if lname in _DROPPED_RESPONSE_HEADERS:
            if lname == b"connection":
                connection = _joined(connection, value)
            continue
        out.append((lname, value))
    if connection is not None:
        out = without_connection_listed(out, connection)
    if extra:
        out.extend(extra)
    return out
