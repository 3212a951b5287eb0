"""When a failed delivery is tried again: the configured waits (about 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 10 h), each moved by up to 10 % either way so that endpoints failing together do not
retry in lockstep."""

from __future__ import annotations

import random
from collections.abc import Sequence

JITTER = 0.1


def retry_delay(failed_attempts: int, schedule: Sequence[float]) -> float | None:
    """Seconds until the next try after `failed_attempts` failures; None when none is left."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return schedule[failed_attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
