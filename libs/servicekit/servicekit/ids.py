"""Primary keys: time-ordered UUIDv7 (RFC 9562), from uuid-utils.

Random v4 keys land all over a big primary-key index (every insert dirties a different leaf
page); these land at its right edge, which is what keeps inserts into a million-row table cheap.
uuid-utils keeps the ids of one process ascending within a millisecond (a counter after the
timestamp), so a batch's ids follow its row order.
"""

from __future__ import annotations

import os
import threading
import uuid

import uuid_utils
from uuid_utils.compat import uuid7

_new_uuid = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def new_id() -> uuid.UUID:
    """One fresh UUIDv7, the default of every table's `id`."""
    return uuid7()


def ordered_uuids(n: int) -> list[uuid.UUID]:
    """`n` fresh UUIDv7, ascending: the ids of a bulk write. Each is built the way
    `uuid_utils.compat` builds its standard-library UUIDs, inline (without its two Python
    calls per id; `uuid.UUID(int=...)` would add its checks)."""
    out = []
    generate = uuid_utils.uuid7
    for _ in range(n):
        value = _new_uuid(uuid.UUID)
        _set(value, "int", generate().int)
        _set(value, "is_safe", _UNKNOWN)
        out.append(value)
    return out


class _RandomHex:
    """os.urandom read in blocks: one getrandom() system call per 128 request ids instead of
    one per request (the kit makes an id for every call that comes without one). Refilled
    after a fork, so that a forked worker never repeats its parent's ids."""

    _BLOCK = 2048  # bytes, 128 ids of 16

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0
        # Two threads must never be handed the same slice.
        self._guard = threading.Lock()
        os.register_at_fork(after_in_child=self._drop)

    def _drop(self) -> None:
        self._hex, self._at = "", 0
        self._guard = threading.Lock()

    def take(self) -> str:
        """32 random hex digits (128 bits), as uuid4().hex but all random."""
        with self._guard:
            at = self._at
            if at >= len(self._hex):
                self._hex, at = os.urandom(self._BLOCK).hex(), 0
            self._at = at + 32
            return self._hex[at : at + 32]


random_hex = _RandomHex().take
