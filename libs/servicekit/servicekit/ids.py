"""Primary keys: time-ordered UUIDv7 (RFC 9562).

Random v4 keys land all over a big primary-key index (every insert dirties a different leaf
page); these land at its right edge, which is what keeps inserts into a million-row table cheap.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from array import array


def ordered_uuids(n: int) -> list[uuid.UUID]:
    """`n` fresh UUIDv7 (RFC 9562), ascending: the current millisecond, then a counter, then
    random bits. Random v4 keys land all over a big primary-key index (every insert dirties a
    different leaf page); these land at its right edge, which is what makes bulk inserts into a
    million-row table cheap."""
    if n >= 1 << 24:
        raise ValueError("at most 2**24 - 1 ids per call")
    head = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | 0x2 << 62
    out = []
    # 24 bits of counter (12 in rand_a, 12 at the top of rand_b) keep the batch in order; the
    # 50 random bits below keep two processes in the same millisecond apart.
    for i, rand in enumerate(array("Q", os.urandom(8 * n))):
        out.append(uuid.UUID(int=head | (i >> 12) << 64 | (i & 0xFFF) << 50 | rand >> 14))
    return out


_last = [0, 0]  # (millisecond, counter) of this process's last new_id()


def new_id() -> uuid.UUID:
    """One fresh UUIDv7, the default of every table's `id`; ascending within the process
    (a counter orders the ids of one millisecond, RFC 9562 section 6.2 method 1)."""
    ms = time.time_ns() // 1_000_000
    if ms <= _last[0] and _last[1] < 0xFFFFFF:
        ms, counter = _last[0], _last[1] + 1
    else:
        counter = 0
    _last[0], _last[1] = ms, counter
    rand = int.from_bytes(os.urandom(8)) >> 14
    head = ms << 80 | 0x7 << 76 | 0x2 << 62
    return uuid.UUID(int=head | (counter >> 12) << 64 | (counter & 0xFFF) << 50 | rand)


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
